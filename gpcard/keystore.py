"""Key store: region master keys (one per security domain and key version) and card AP keys.

:class:`KeyStore` is the interface the server codes against; :class:`FileKeyStore` keeps the keys
in one file encrypted at rest with AES-256-GCM (``cryptography``) under a store key that lives
elsewhere (environment / secret manager). An HSM-backed store implements the same interface and
overrides :meth:`KeyStore.card_keys` so that master keys never leave it.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gpcard.aid import AID
from gpcard.diversify import diversify_keys
from gpcard.kdf import AES_KEY_LENGTHS
from gpcard.scp03 import StaticKeys

__all__ = [
    "FileKeyStore",
    "KeyNotFoundError",
    "KeyStore",
    "KeyStoreError",
    "WrongStoreKeyError",
    "generate_store_key",
]


class KeyStoreError(Exception):
    """Any key store failure."""


class WrongStoreKeyError(KeyStoreError):
    """The store key does not open this key store file (or the file was altered)."""


class KeyNotFoundError(KeyStoreError, KeyError):
    """No such key in the store."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "key not found"


def _sd_name(sd: AID | bytes | str) -> str:
    if isinstance(sd, str):
        return AID.from_hex(sd).hex()
    return AID(bytes(sd)).hex()


def _check_key(key: bytes) -> bytes:
    if len(key) not in AES_KEY_LENGTHS:
        raise KeyStoreError(f"keys are AES keys of 16, 24 or 32 bytes, not {len(key)}")
    return bytes(key)


class KeyStore(ABC):
    """Master keys by (SD AID, key version); AP keys by name with numbered versions."""

    @abstractmethod
    def master_key(self, sd: AID | bytes | str, version: int) -> bytes:
        """The region master key of an SD (raises KeyNotFoundError)."""

    @abstractmethod
    def put_master_key(self, sd: AID | bytes | str, version: int, key: bytes) -> None:
        """Store (or replace) a master key."""

    @abstractmethod
    def ap_key(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        """An AP key: the given version, or the newest; returns (version, key)."""

    @abstractmethod
    def put_ap_key(self, name: str, key: bytes) -> int:
        """Add a new version of an AP key; returns its version number (1, 2, ...)."""

    def rotate_ap_key(self, name: str, length: int = 16) -> tuple[int, bytes]:
        """Generate and store a fresh random AP key; older versions stay readable."""
        key = secrets.token_bytes(length)
        return self.put_ap_key(name, key), key

    def card_keys(self, sd: AID | bytes | str, version: int, iin: bytes, cin: bytes) -> StaticKeys:
        """The card's SCP03 keys for ``sd``, diversified from the master key (docs/card-protocol.md)."""
        return diversify_keys(self.master_key(sd, version), iin, cin, version)


def generate_store_key() -> bytes:
    """A new random store key (32 bytes, AES-256-GCM)."""
    return AESGCM.generate_key(bit_length=256)


MAGIC = b"gpcard-keystore-v1\n"


class FileKeyStore(KeyStore):
    """All keys in one AES-256-GCM encrypted file; each write replaces the file atomically.

    One writer at a time (a deployment with several writers puts an HSM or a database-backed
    store behind the same interface)."""

    def __init__(self, path: str | os.PathLike[str], store_key: bytes) -> None:
        if len(store_key) != 32:
            raise KeyStoreError("the store key has 32 bytes (AES-256-GCM)")
        self.path = Path(path)
        self._aead = AESGCM(bytes(store_key))
        self._data: dict[str, dict[str, str]] = {"master": {}, "ap": {}}
        if self.path.exists():
            self._data = self._read()

    def _read(self) -> dict[str, dict[str, str]]:
        raw = self.path.read_bytes()
        if not raw.startswith(MAGIC):
            raise KeyStoreError(f"{self.path} is not a gpcard key store")
        try:
            blob = base64.b64decode(raw[len(MAGIC) :].strip(), validate=True)
        except ValueError:
            raise KeyStoreError(f"{self.path} is damaged (not base64)") from None
        if len(blob) < 12 + 16:
            raise KeyStoreError(f"{self.path} is damaged (too short)")
        try:
            plain = self._aead.decrypt(blob[:12], blob[12:], MAGIC)
        except InvalidTag:
            raise WrongStoreKeyError(
                f"the store key does not open {self.path} (wrong key, or the file was altered)"
            ) from None
        data = json.loads(plain)
        return {"master": dict(data.get("master", {})), "ap": dict(data.get("ap", {}))}

    def _write(self) -> None:
        nonce = secrets.token_bytes(12)
        plain = json.dumps(self._data, sort_keys=True).encode()
        blob = nonce + self._aead.encrypt(nonce, plain, MAGIC)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keystore-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(MAGIC + base64.b64encode(blob) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def master_key(self, sd: AID | bytes | str, version: int) -> bytes:
        name = f"{_sd_name(sd)}/{version:02X}"
        try:
            return bytes.fromhex(self._data["master"][name])
        except KeyError:
            raise KeyNotFoundError(f"no master key for SD {name}") from None

    def put_master_key(self, sd: AID | bytes | str, version: int, key: bytes) -> None:
        if not 0 <= version <= 0xFF:
            raise KeyStoreError("key version is one byte")
        self._data["master"][f"{_sd_name(sd)}/{version:02X}"] = _check_key(key).hex()
        self._write()

    def _ap_versions(self, name: str) -> dict[int, str]:
        prefix = f"{name}/"
        return {int(k[len(prefix) :]): v for k, v in self._data["ap"].items() if k.startswith(prefix)}

    def ap_key(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        versions = self._ap_versions(name)
        if not versions:
            raise KeyNotFoundError(f"no AP key {name!r}")
        v = max(versions) if version is None else version
        if v not in versions:
            raise KeyNotFoundError(f"no version {v} of AP key {name!r}")
        return v, bytes.fromhex(versions[v])

    def put_ap_key(self, name: str, key: bytes) -> int:
        if not name or "/" in name:
            raise KeyStoreError("an AP key name is non-empty and has no '/'")
        version = max(self._ap_versions(name), default=0) + 1
        self._data["ap"][f"{name}/{version}"] = _check_key(key).hex()
        self._write()
        return version
