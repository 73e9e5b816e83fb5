"""Lockout after repeated sign-in failures, per account and per client address (R9.2).

Counters live in the cache (Redis in production, shared by every web process) and expire on
their own, so a lockout lifts without anyone touching it."""

from __future__ import annotations

import datetime as dt
import hashlib

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone


def _key(kind: str, value: str) -> str:
    # Hash so that arbitrary user input never forms cache keys directly.
    return f"lockout:{kind}:{hashlib.sha256(value.lower().encode()).hexdigest()[:32]}"


def _subjects(username: str, ip: str | None) -> list[tuple[str, str, int]]:
    subjects = [("user", username.strip(), settings.LOCKOUT_MAX_FAILURES)]
    if ip:
        subjects.append(("ip", ip, settings.LOCKOUT_MAX_FAILURES_PER_ADDRESS))
    return subjects


def locked_until(username: str, ip: str | None) -> dt.datetime | None:
    """When the later of the account's and the address's lockouts ends, or None if neither is locked."""
    until = None
    for kind, value, _limit in _subjects(username, ip):
        stamp = cache.get(_key(f"{kind}-until", value))
        if stamp is not None:
            at = dt.datetime.fromtimestamp(stamp, tz=dt.UTC)
            if at > timezone.now() and (until is None or at > until):
                until = at
    return until


def register_failure(username: str, ip: str | None) -> list[str]:
    """Count one failure; returns which subjects ("user", "ip") became locked by it."""
    newly_locked = []
    for kind, value, limit in _subjects(username, ip):
        key = _key(kind, value)
        cache.add(key, 0, timeout=settings.LOCKOUT_SECONDS)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=settings.LOCKOUT_SECONDS)
            count = 1
        if count >= limit:
            until = timezone.now() + dt.timedelta(seconds=settings.LOCKOUT_SECONDS)
            if cache.add(_key(f"{kind}-until", value), until.timestamp(), timeout=settings.LOCKOUT_SECONDS):
                newly_locked.append(kind)
            cache.delete(key)
    return newly_locked


def clear(username: str) -> None:
    """A successful sign-in forgets the account's failures (not the address's)."""
    cache.delete(_key("user", username.strip()))
