"""The service's root key for secrets at rest (KEYSTORE_KEY), as configured: decoded, with the
published demo key in demo mode only. The card key store (cardap.keystore) and the operators'
authenticator secrets (operators.otp_secrets) each derive their own key from it with HKDF."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.core.exceptions import ImproperlyConfigured

# Demo mode only: a fixed, public store key so the demo works without configuration. Settings
# refuse it (and an empty KEYSTORE_KEY) when CARDAP_DEMO/DEBUG are off.
DEMO_KEYSTORE_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"cardap demo keystore - NOT SECRET").digest())


def decode_store_key(raw: str | bytes) -> bytes:
    """KEYSTORE_KEY as configured: 32 bytes in (url-safe) base64, e.g. a Fernet key."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    try:
        key = base64.urlsafe_b64decode(text.strip().replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured("KEYSTORE_KEY must be 32 bytes in base64") from None
    if len(key) != 32:
        raise ImproperlyConfigured(f"KEYSTORE_KEY must be 32 bytes in base64, not {len(key)} bytes")
    return key


def is_demo_key(raw: str) -> bool:
    try:
        return decode_store_key(raw) == decode_store_key(DEMO_KEYSTORE_KEY)
    except ImproperlyConfigured:
        return False


def store_key() -> bytes:
    from django.conf import settings

    raw = settings.KEYSTORE_KEY or (DEMO_KEYSTORE_KEY.decode() if settings.DEMO or settings.DEBUG else "")
    if not raw:
        raise ImproperlyConfigured("KEYSTORE_KEY is not set")
    return decode_store_key(raw)


def derived_key(info: bytes) -> bytes:
    """A 32-byte key for one purpose (`info`), derived from the store key with HKDF-SHA256."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(store_key())
