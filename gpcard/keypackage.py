"""Access key packages: a card AP's access material (description, mutual-authentication key,
system-fixed PIN), exported by the service for a provider's business system and opened by the
access module (docs/access-key-package.md). Both ends use this module, so the format has one
implementation.

A package is a UTF-8 JSON object. Its clear header names the format, the provider and the AIDs;
the secret payload is JSON sealed with AES-256-GCM, the header being the associated data, so a
changed header or ciphertext does not open. The AES key comes either from a passphrase (scrypt,
RFC 7914) or from an X25519 public key the provider registered (ECIES: an ephemeral X25519 key,
ECDH, HKDF-SHA256 over both public keys, RFC 5869). All primitives are ``cryptography``'s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

__all__ = [
    "FORMAT",
    "APAccess",
    "KeyPackage",
    "KeyPackageError",
    "OtherProviderError",
    "PackageTamperedError",
    "WrongSecretError",
    "open_package",
    "public_key_fingerprint",
    "b64",
    "load_public_key",
    "public_key_raw",
    "seal_for_passphrase",
    "seal_for_public_key",
]

FORMAT = "cardap-access-key-package"
VERSION = 1
METHOD_PASSPHRASE = "scrypt-aes256gcm"
METHOD_PUBLIC_KEY = "x25519-hkdf-sha256-aes256gcm"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SCRYPT_MAX_N = 2**20  # refuse a package that asks for more work than this (a denial of service)
MIN_PASSPHRASE_LENGTH = 12
HKDF_INFO = b"cardap access key package v1"
MAX_PACKAGE_BYTES = 1 << 20


class KeyPackageError(ValueError):
    """A key package that cannot be used: malformed, unknown version, or refused."""


class WrongSecretError(KeyPackageError):
    """The passphrase or private key does not open this package (or the package was altered)."""


class OtherProviderError(KeyPackageError):
    """The package was issued to another provider than the one expected."""


class PackageTamperedError(KeyPackageError):
    """The package opened but its contents contradict its header."""


@dataclass(frozen=True)
class APAccess:
    """What a business system needs to read one card AP. ``key`` and ``system_pin`` never appear
    in repr."""

    aid: str  # upper-case hex
    name: str
    ap_type: str  # "A", "C", "D" or "X" (custom)
    description: bytes  # the card AP description TLV (A0 …)
    key_version: int | None = None
    key: bytes | None = field(default=None, repr=False)
    pin_source: str = ""  # "", "holder" or "system"
    system_pin: str | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "aid": self.aid,
            "name": self.name,
            "type": self.ap_type,
            "description": self.description.hex().upper(),
            "key": None if self.key is None else {"version": self.key_version, "value": self.key.hex()},
            "pin_source": self.pin_source,
            "system_pin": self.system_pin,
        }

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> APAccess:
        try:
            key = item.get("key")
            return cls(
                aid=str(item["aid"]).upper(),
                name=str(item["name"]),
                ap_type=str(item["type"]),
                description=bytes.fromhex(item["description"]),
                key_version=int(key["version"]) if key else None,
                key=bytes.fromhex(key["value"]) if key else None,
                pin_source=str(item.get("pin_source") or ""),
                system_pin=item.get("system_pin"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PackageTamperedError(f"malformed card AP entry: {type(e).__name__}") from None


@dataclass(frozen=True)
class KeyPackage:
    """An opened package: the provider it was issued to and its card APs."""

    package_id: str
    provider_id: str
    provider_name: str
    created_at: str
    aps: tuple[APAccess, ...]

    def get(self, aid: str) -> APAccess | None:
        aid = aid.replace(" ", "").upper()
        return next((a for a in self.aps if a.aid == aid), None)


# --- sealing (the service) ------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except (binascii.Error, ValueError):
        raise KeyPackageError(f"{what} is not base64") from None


def _aad(header: dict[str, Any]) -> bytes:
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _header(
    package_id: str, provider_id: str, provider_name: str, created_at: str, aps: Sequence[APAccess]
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "package_id": package_id,
        "provider": {"id": provider_id, "name": provider_name},
        "created_at": created_at,
        "aids": [a.aid for a in aps],
    }


def _payload(header: dict[str, Any], aps: Sequence[APAccess]) -> bytes:
    return json.dumps({"package_id": header["package_id"], "aps": [a.to_json() for a in aps]}).encode()


def _seal(header: dict[str, Any], key: bytes, aps: Sequence[APAccess]) -> bytes:
    nonce = secrets.token_bytes(12)
    header = {**header, "nonce": b64(nonce)}
    ciphertext = AESGCM(key).encrypt(nonce, _payload(header, aps), _aad(header))
    return json.dumps({**header, "ciphertext": b64(ciphertext)}, ensure_ascii=False, indent=1).encode()


def _scrypt(passphrase: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase.encode("utf-8"))


def seal_for_passphrase(
    *,
    package_id: str,
    provider_id: str,
    provider_name: str,
    created_at: str,
    aps: Sequence[APAccess],
    passphrase: str,
) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE_LENGTH:
        raise KeyPackageError(f"a passphrase has at least {MIN_PASSPHRASE_LENGTH} characters")
    salt = secrets.token_bytes(16)
    header = _header(package_id, provider_id, provider_name, created_at, aps)
    header["protection"] = {
        "method": METHOD_PASSPHRASE,
        "salt": b64(salt),
        "n": SCRYPT_N,
        "r": SCRYPT_R,
        "p": SCRYPT_P,
    }
    return _seal(header, _scrypt(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P), aps)


def load_public_key(text: str | bytes) -> X25519PublicKey:
    """An X25519 public key: PEM (SubjectPublicKeyInfo) or the 32 raw bytes in base64."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if b"-----BEGIN" in raw:
        try:
            key = serialization.load_pem_public_key(raw)
        except ValueError:
            raise KeyPackageError("not a PEM public key") from None
        if not isinstance(key, X25519PublicKey):
            raise KeyPackageError("the public key must be an X25519 key")
        return key
    data = _unb64(raw.strip().decode("ascii", "replace"), "the public key")
    if len(data) != 32:
        raise KeyPackageError("a raw X25519 public key has 32 bytes")
    return X25519PublicKey.from_public_bytes(data)


def public_key_raw(public: X25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_fingerprint(public: X25519PublicKey) -> str:
    """SHA-256 of the raw public key, hex: how a package names its recipient."""
    return hashlib.sha256(public_key_raw(public)).hexdigest()


def _ecies_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=HKDF_INFO)
    return hkdf.derive(shared)


def seal_for_public_key(
    *,
    package_id: str,
    provider_id: str,
    provider_name: str,
    created_at: str,
    aps: Sequence[APAccess],
    public_key: X25519PublicKey,
) -> bytes:
    ephemeral = X25519PrivateKey.generate()
    eph_raw, rec_raw = public_key_raw(ephemeral.public_key()), public_key_raw(public_key)
    key = _ecies_key(ephemeral.exchange(public_key), eph_raw, rec_raw)
    header = _header(package_id, provider_id, provider_name, created_at, aps)
    header["protection"] = {
        "method": METHOD_PUBLIC_KEY,
        "ephemeral_public": b64(eph_raw),
        "recipient": public_key_fingerprint(public_key),
    }
    return _seal(header, key, aps)


# --- opening (the access module) ------------------------------------------------------------


def _parse(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_PACKAGE_BYTES:
        raise KeyPackageError("the file is too large to be a key package")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise KeyPackageError("not a key package (not JSON)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise KeyPackageError("not a card AP access key package")
    if doc.get("version") != VERSION:
        raise KeyPackageError(f"key package version {doc.get('version')!r} is not supported")
    return doc


def _package_key(
    protection: dict[str, Any], passphrase: str | None, private_key: X25519PrivateKey | None
) -> bytes:
    method = protection.get("method")
    if method == METHOD_PASSPHRASE:
        if passphrase is None:
            raise WrongSecretError("this package is protected by a passphrase")
        try:
            n, r, p = int(protection["n"]), int(protection["r"]), int(protection["p"])
        except (KeyError, TypeError, ValueError):
            raise KeyPackageError("bad scrypt parameters") from None
        if not (2 <= n <= SCRYPT_MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
            raise KeyPackageError("scrypt parameters out of range")
        return _scrypt(passphrase, _unb64(protection.get("salt"), "salt"), n, r, p)
    if method == METHOD_PUBLIC_KEY:
        if private_key is None:
            raise WrongSecretError("this package is encrypted to a public key: give its private key")
        mine = public_key_raw(private_key.public_key())
        if protection.get("recipient") != hashlib.sha256(mine).hexdigest():
            raise WrongSecretError("this package was encrypted to another public key")
        eph = _unb64(protection.get("ephemeral_public"), "ephemeral public key")
        if len(eph) != 32:
            raise KeyPackageError("the ephemeral public key has 32 bytes")
        return _ecies_key(private_key.exchange(X25519PublicKey.from_public_bytes(eph)), eph, mine)
    raise KeyPackageError(f"unknown protection method {method!r}")


def open_package(
    data: bytes,
    *,
    passphrase: str | None = None,
    private_key: X25519PrivateKey | None = None,
    expected_provider: str | None = None,
) -> KeyPackage:
    """Check and decrypt a package; ``expected_provider`` (the provider id this business system
    belongs to) refuses another provider's package before anything is decrypted."""
    doc = _parse(bytes(data))
    header = {k: v for k, v in doc.items() if k != "ciphertext"}
    provider = header.get("provider")
    if not isinstance(provider, dict) or not isinstance(header.get("protection"), dict):
        raise KeyPackageError("the key package header is incomplete")
    if expected_provider is not None and str(provider.get("id")) != str(expected_provider):
        raise OtherProviderError("this key package was issued to another provider")
    key = _package_key(header["protection"], passphrase, private_key)
    nonce = _unb64(header.get("nonce"), "nonce")
    try:
        plain = AESGCM(key).decrypt(nonce, _unb64(doc.get("ciphertext"), "ciphertext"), _aad(header))
    except (InvalidTag, ValueError):
        raise WrongSecretError("the package does not open: wrong passphrase or key, or altered") from None
    try:
        payload = json.loads(plain)
        aps = tuple(APAccess.from_json(item) for item in payload["aps"])
    except (ValueError, KeyError, TypeError):
        raise PackageTamperedError("the package payload is malformed") from None
    if payload.get("package_id") != header.get("package_id") or [a.aid for a in aps] != header.get("aids"):
        raise PackageTamperedError("the package payload does not match its header")
    return KeyPackage(
        package_id=str(header["package_id"]),
        provider_id=str(provider.get("id")),
        provider_name=str(provider.get("name", "")),
        created_at=str(header.get("created_at", "")),
        aps=aps,
    )
