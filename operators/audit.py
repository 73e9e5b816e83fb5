"""Writing to the audit log. Every sign-in, failure, permission change and card operation goes
through `record`, which appends one hash-chained entry."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest

from operators.models import AuditEntry

GENESIS = "0" * 64
# Serialises appends so that two entries never claim the same predecessor (PostgreSQL).
_ADVISORY_LOCK_KEY = 0x41554449  # "AUDI"


def client_ip(request: HttpRequest | None) -> str | None:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT reverse proxies the entry
    they appended to X-Forwarded-For (entries further left are client-supplied, not trusted)."""
    if request is None:
        return None
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
    if hops and len(forwarded) >= hops:
        candidate = forwarded[-hops]
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR") or None


def _clean(value: Any) -> Any:
    """PostgreSQL refuses NUL in text and in jsonb; whatever a caller sends (a path, a query
    value, a user name) is kept readable with the NUL shown as \\x00, so the entry is written."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def record(
    *,
    action: str,
    request: HttpRequest | None = None,
    actor: Any = None,
    provider_id: int | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditEntry:
    """Append one entry. `actor` defaults to the request's user; never pass secrets in `detail`."""
    user = getattr(request, "user", None)
    if actor is None and user is not None and user.is_authenticated:
        actor = user
    actor_name = actor if isinstance(actor, str) else (getattr(actor, "username", "") or "")
    if provider_id is None and actor is not None and not isinstance(actor, str):
        provider_id = getattr(actor, "provider_id", None)
    # The chain's lock is held from here to the commit of the caller's transaction: every round
    # trip after it is serial for the whole service. No savepoint (an append that fails fails the
    # caller's transaction, which is what it must do anyway). The head is read in a statement of
    # its own AFTER the lock: in one statement with it, its snapshot would predate the wait.
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
        last = AuditEntry.objects.order_by("-id").values_list("hash", flat=True).first()
        entry = AuditEntry(
            at=dt.datetime.now(dt.UTC),
            actor=_clean(actor_name)[:150],
            provider_id_snapshot=provider_id,
            action=action,
            ip=ip or client_ip(request),
            target=_clean(target)[:200],
            detail=_clean(detail or {}),
            prev_hash=last or GENESIS,
        )
        entry.hash = entry.compute_hash()
        entry.save()
    return entry


def verify_chain() -> list[str]:
    """Return a description of every broken link; empty when the chain is intact."""
    problems: list[str] = []
    prev = GENESIS
    prev_id = 0
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.prev_hash != prev:
            if entry.id > prev_id + 1:
                # A gap alone is harmless (a rolled-back transaction consumes an id); a gap that
                # also breaks the chain means the entries in it were deleted.
                missing = f"{prev_id + 1}" if entry.id == prev_id + 2 else f"{prev_id + 1}-{entry.id - 1}"
                problems.append(
                    f"entry {missing}: deleted (entry {entry.id} no longer links to entry {prev_id})"
                )
            else:
                problems.append(
                    f"entry {entry.id}: previous hash does not match entry {prev_id}"
                    " (an entry was deleted or altered before it)"
                )
        if entry.compute_hash() != entry.hash:
            problems.append(f"entry {entry.id}: content altered (hash mismatch)")
        prev, prev_id = entry.hash, entry.id
    return problems
