"""Helpers for the sign-in tests: an independent RFC 6238 TOTP (hmac + struct, not django-otp)."""

from __future__ import annotations

import hashlib
import hmac
import struct
import time

import pytest
from django.core.cache import cache
from django_otp.plugins.otp_totp.models import TOTPDevice


def rfc6238(key: bytes, at: float, *, step: int = 30, digits: int = 6) -> str:
    counter = struct.pack(">Q", int(at) // step)
    mac = hmac.new(key, counter, hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 10**digits:0{digits}d}"


def code_for(user, at: float | None = None) -> str:
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    return rfc6238(device.bin_key, time.time() if at is None else at, step=device.step, digits=device.digits)


@pytest.fixture(autouse=True)
def fresh_cache():
    """Lockout counters live in the cache: start every test from zero."""
    cache.clear()
    yield
    cache.clear()
