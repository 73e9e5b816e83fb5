"""The server's key store (R9.4): gpcard's `KeyStore` interface kept in the database, every key
encrypted at rest, so that every web and worker process shares one store and concurrent writers
are safe (gpcard's FileKeyStore allows one writer at a time).

Each key is sealed with AES-256-GCM (the same primitive as gpcard's file store) under a key
derived from settings.KEYSTORE_KEY with HKDF; the row's reference is the associated data, so a
ciphertext moved to another row does not open. Plain keys never reach the database, the logs or
the audit detail. An HSM-backed store can replace this one behind the same interface.
"""

from __future__ import annotations

import base64
import functools
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.db import IntegrityError, transaction
from django.db.models import Max

from gpcard.aid import AID
from gpcard.keystore import KeyNotFoundError, KeyStore, KeyStoreError, WrongStoreKeyError
from operators.keys import DEMO_KEYSTORE_KEY, decode_store_key, store_key  # noqa: F401 (re-exported)

_HKDF_INFO = b"cardap database key store v1"


def _sd_name(sd: AID | bytes | str) -> str:
    return AID.from_hex(sd).hex() if isinstance(sd, str) else AID(bytes(sd)).hex()


def _check(key: bytes) -> bytes:
    if len(key) not in (16, 24, 32):
        raise KeyStoreError(f"keys are AES keys of 16, 24 or 32 bytes, not {len(key)}")
    return bytes(key)


class DatabaseKeyStore(KeyStore):
    def __init__(self, store_key: bytes) -> None:
        if len(store_key) != 32:
            raise KeyStoreError("the store key has 32 bytes")
        sealing = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(store_key)
        self._aead = AESGCM(sealing)

    # --- sealing ---------------------------------------------------------------------------
    def _seal(self, ref: str, key: bytes) -> str:
        nonce = secrets.token_bytes(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, key, ref.encode())).decode()

    def _open(self, ref: str, ciphertext: str) -> bytes:
        blob = base64.b64decode(ciphertext)
        try:
            return self._aead.decrypt(blob[:12], blob[12:], ref.encode())
        except InvalidTag:
            raise WrongStoreKeyError(
                f"key {ref} does not open with this store key (or was altered)"
            ) from None

    def seal(self, ref: str, data: bytes) -> str:
        """Seal a short-lived secret (a card job's PIN) bound to ``ref``, e.g. the job's id."""
        return self._seal(f"transient:{ref}", data)

    def open_sealed(self, ref: str, ciphertext: str) -> bytes:
        return self._open(f"transient:{ref}", ciphertext)

    # --- gpcard.keystore.KeyStore ------------------------------------------------------------
    def master_key(self, sd: AID | bytes | str, version: int) -> bytes:
        from cardap.models import StoredSecret

        ref = f"master:{_sd_name(sd)}/{version:02X}"
        row = StoredSecret.objects.filter(ref=ref, destroyed_at__isnull=True).first()
        if row is None:
            raise KeyNotFoundError(f"no master key for SD {_sd_name(sd)}/{version:02X}")
        return self._open(ref, row.ciphertext)

    def put_master_key(self, sd: AID | bytes | str, version: int, key: bytes) -> None:
        from cardap.models import StoredSecret

        if not 0 <= version <= 0xFF:
            raise KeyStoreError("key version is one byte")
        name = _sd_name(sd)
        ref = f"master:{name}/{version:02X}"
        StoredSecret.objects.update_or_create(
            ref=ref,
            defaults={
                "kind": "master",
                "name": name,
                "version": version,
                "purpose": "region master key",
                "ciphertext": self._seal(ref, _check(key)),
            },
        )

    def ap_key(self, name: str, version: int | None = None) -> tuple[int, bytes]:
        from cardap.models import StoredSecret

        rows = StoredSecret.objects.filter(kind="ap", name=name, destroyed_at__isnull=True)
        row = rows.order_by("-version").first() if version is None else rows.filter(version=version).first()
        if row is None:
            raise KeyNotFoundError(f"no AP key {name!r}" + (f" version {version}" if version else ""))
        return row.version, self._open(row.ref, row.ciphertext)

    def put_ap_key(self, name: str, key: bytes) -> int:
        from cardap.models import StoredSecret

        if not name or "/" in name:
            raise KeyStoreError("an AP key name is non-empty and has no '/'")
        key = _check(key)
        for _attempt in range(5):  # two writers racing for the same version: the loser retries
            version = (
                StoredSecret.objects.filter(kind="ap", name=name).aggregate(v=Max("version"))["v"] or 0
            ) + 1
            ref = f"ap:{name}/{version}"
            try:
                with transaction.atomic():
                    StoredSecret.objects.create(
                        ref=ref,
                        kind="ap",
                        name=name,
                        version=version,
                        purpose="card AP key",
                        ciphertext=self._seal(ref, key),
                    )
                return version
            except IntegrityError:
                continue
        raise KeyStoreError(f"could not store a new version of {name!r}")


def get_keystore() -> DatabaseKeyStore:
    return _keystore_for(store_key())


@functools.lru_cache(maxsize=4)
def _keystore_for(key: bytes) -> DatabaseKeyStore:
    """One store object per configured store key: it holds only the derived sealing key (which
    every call needs anyway), never an opened key, so keeping it saves an HKDF per use."""
    return DatabaseKeyStore(key)
