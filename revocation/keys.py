"""The two Ed25519 keys of the revocation feed: the call centre's public key that verifies the
upstream feed, and this service's own key that signs the snapshots providers download.

Production configures both (REVOCATION_FEED_PUBKEY, REVOCATION_SIGNING_KEY: base64, PEM, or a
path to a file holding either); demo mode falls back to fixed DEMO-ONLY keys, refused otherwise.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from revocation import feedfile

# DEMO ONLY: signs snapshots in the demo and the tests. Never use it in production.
DEMO_SIGNING_SEED = b"demo-only-snapshot-signing-key!!"


def _demo_allowed() -> bool:
    return bool(settings.DEMO or settings.DEBUG)


@functools.cache
def feed_public_key() -> Ed25519PublicKey:
    value = settings.REVOCATION_FEED_PUBKEY
    if not value:
        if not _demo_allowed():
            raise ImproperlyConfigured("REVOCATION_FEED_PUBKEY is required (the call centre's Ed25519 key)")
        return feedfile.demo_private_key().public_key()
    try:
        key = feedfile.load_public_key(value)
    except (ValueError, OSError) as exc:
        raise ImproperlyConfigured(
            f"REVOCATION_FEED_PUBKEY is not a usable Ed25519 public key: {exc}"
        ) from None
    demo = feedfile.public_key_b64(feedfile.demo_private_key().public_key())
    if feedfile.public_key_b64(key) == demo and not _demo_allowed():
        raise ImproperlyConfigured("REVOCATION_FEED_PUBKEY is the published demo key; refused in production")
    return key


@functools.cache
def signing_key() -> Ed25519PrivateKey:
    value = settings.REVOCATION_SIGNING_KEY
    if not value:
        if not _demo_allowed():
            raise ImproperlyConfigured(
                "REVOCATION_SIGNING_KEY is required (Ed25519 key that signs snapshots)"
            )
        return Ed25519PrivateKey.from_private_bytes(DEMO_SIGNING_SEED)
    try:
        return feedfile.load_private_key(value)
    except (ValueError, OSError) as exc:
        raise ImproperlyConfigured(
            f"REVOCATION_SIGNING_KEY is not a usable Ed25519 private key: {exc}"
        ) from None


def signing_public_key() -> Ed25519PublicKey:
    return signing_key().public_key()


def key_id(key: Ed25519PublicKey) -> str:
    """Short, stable name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign(data: bytes) -> str:
    return base64.b64encode(signing_key().sign(data)).decode()
