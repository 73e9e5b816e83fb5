"""Where AP keys (mutual authentication, secure messaging) are kept, encrypted at rest (R9.4).

A small interface so an HSM-backed store can replace this one later; the default encrypts each
key with Fernet (AES-128-CBC + HMAC) under settings.KEYSTORE_KEY and stores only the ciphertext.
The plaintext never reaches the database, the logs or the audit detail.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Protocol

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

# Demo mode only: a fixed, public key so the demo works without configuration. Never used when
# CARDAP_DEMO is off (settings refuse to start without KEYSTORE_KEY there).
DEMO_KEYSTORE_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"cardap demo keystore - NOT SECRET").digest())


class KeyStore(Protocol):
    def put(self, *, purpose: str, secret: bytes) -> str:
        """Store `secret`; return the reference that names it."""

    def get(self, ref: str) -> bytes:
        """The secret named by `ref`; KeyError when it is unknown or destroyed."""

    def destroy(self, ref: str) -> None:
        """Forget the secret for good."""


class FernetDatabaseKeyStore:
    def __init__(self, key: bytes | str) -> None:
        self._fernet = Fernet(key)

    def put(self, *, purpose: str, secret: bytes) -> str:
        from cardap.models import StoredSecret

        ref = "ks_" + secrets.token_hex(16)
        StoredSecret.objects.create(
            ref=ref, purpose=purpose[:100], ciphertext=self._fernet.encrypt(secret).decode()
        )
        return ref

    def get(self, ref: str) -> bytes:
        from cardap.models import StoredSecret

        row = StoredSecret.objects.filter(ref=ref, destroyed_at__isnull=True).first()
        if row is None:
            raise KeyError(ref)
        try:
            return self._fernet.decrypt(row.ciphertext.encode())
        except InvalidToken:
            raise KeyError(f"{ref}: cannot be decrypted with the configured KEYSTORE_KEY") from None

    def destroy(self, ref: str) -> None:
        from cardap.models import StoredSecret

        StoredSecret.objects.filter(ref=ref).update(ciphertext="", destroyed_at=timezone.now())


def get_keystore() -> KeyStore:
    key = settings.KEYSTORE_KEY or (DEMO_KEYSTORE_KEY if settings.DEMO or settings.DEBUG else "")
    if not key:
        raise ImproperlyConfigured("KEYSTORE_KEY is not set")
    try:
        return FernetDatabaseKeyStore(key)
    except ValueError:
        raise ImproperlyConfigured(
            "KEYSTORE_KEY must be a Fernet key (32 url-safe base64-encoded bytes)"
        ) from None
