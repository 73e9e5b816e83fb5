"""Authenticator secrets at rest. django-otp stores TOTP keys and backup codes as typed; here:

- a TOTP key is sealed with AES-256-GCM under a key derived from KEYSTORE_KEY (operators.keys), the
  owner's id as associated data, so a sealed key copied to another operator's row does not open.
  Signals seal it on every save and open it when a row is loaded, so django-otp works unchanged
  on the plain key in memory; the database never holds it in clear.
- a backup code is kept as a keyed hash (HMAC-SHA256, truncated to django-otp's 16-character
  column): codes are looked up by equality, and a database copy without the key reveals none.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from operators.keys import derived_key

SEALED = "s1:"  # prefix of a sealed TOTP key (a plain one is hex)
_TOTP_INFO = b"cardap operator TOTP keys v1"
_BACKUP_INFO = b"cardap operator backup codes v1"


class SealedKeyError(ValueError):
    pass


@functools.cache
def _aead(root: bytes) -> AESGCM:
    return AESGCM(root)


def _totp_aead() -> AESGCM:
    return _aead(derived_key(_TOTP_INFO))


def is_sealed(value: str) -> bool:
    return value.startswith(SEALED)


def seal_totp_key(hex_key: str, *, user_id: int) -> str:
    try:
        raw = binascii.unhexlify(hex_key)
    except (binascii.Error, ValueError):
        raise SealedKeyError("a TOTP key is hex") from None
    nonce = secrets.token_bytes(12)
    blob = nonce + _totp_aead().encrypt(nonce, raw, f"totp:{user_id}".encode())
    sealed = SEALED + base64.urlsafe_b64encode(blob).decode().rstrip("=")
    if len(sealed) > 80:  # django-otp's column
        raise SealedKeyError("TOTP keys of more than 29 bytes cannot be stored sealed")
    return sealed


def open_totp_key(sealed: str, *, user_id: int) -> str:
    text = sealed[len(SEALED) :]
    blob = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    try:
        raw = _totp_aead().decrypt(blob[:12], blob[12:], f"totp:{user_id}".encode())
    except InvalidTag:
        message = f"the TOTP key of operator {user_id} does not open (wrong KEYSTORE_KEY?)"
        raise SealedKeyError(message) from None
    return raw.hex()


def hash_backup_code(code: str) -> str:
    """What is stored for a backup code (and looked up when one is typed)."""
    mac = hmac.new(derived_key(_BACKUP_INFO), code.strip().lower().encode(), hashlib.sha256)
    return mac.hexdigest()[:16]


# --- signal receivers (connected in operators.apps) ---------------------------------------------


def open_on_load(sender: Any, instance: Any, **kwargs: Any) -> None:
    key = instance.__dict__.get("key")  # not when deferred
    if key and is_sealed(key) and instance.user_id is not None:
        instance.key = open_totp_key(key, user_id=instance.user_id)


def seal_before_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    if instance.key and not is_sealed(instance.key):
        instance._plain_key = instance.key
        instance.key = seal_totp_key(instance.key, user_id=instance.user_id)


def reopen_after_save(sender: Any, instance: Any, **kwargs: Any) -> None:
    plain = instance.__dict__.pop("_plain_key", None)
    if plain is not None:
        instance.key = plain
