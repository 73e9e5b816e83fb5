"""The file key store: keys round-trip, nothing readable at rest, wrong store key refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpcard.aid import LOCAL_AREA_SD_AID
from gpcard.diversify import diversify_keys
from gpcard.keystore import (
    FileKeyStore,
    KeyNotFoundError,
    KeyStoreError,
    WrongStoreKeyError,
    generate_store_key,
)

MASTER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def test_round_trip_and_reopen(tmp_path: Path) -> None:
    path, sk = tmp_path / "keys.bin", generate_store_key()
    store = FileKeyStore(path, sk)
    store.put_master_key(LOCAL_AREA_SD_AID, 0x30, MASTER)
    v1 = store.put_ap_key("D392F10100000001", bytes(16))
    v2, k2 = store.rotate_ap_key("D392F10100000001")
    again = FileKeyStore(path, sk)
    assert again.master_key("D392100031000201", 0x30) == MASTER
    assert (v1, v2) == (1, 2)
    assert again.ap_key("D392F10100000001") == (2, k2)
    assert again.ap_key("D392F10100000001", 1) == (1, bytes(16))
    iin, cin = b"\x42", bytes(10)
    assert again.card_keys(LOCAL_AREA_SD_AID, 0x30, iin, cin) == diversify_keys(MASTER, iin, cin, 0x30)


def test_file_holds_no_plain_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.bin"
    store = FileKeyStore(path, generate_store_key())
    store.put_master_key(LOCAL_AREA_SD_AID, 0x30, MASTER)
    raw = path.read_bytes()
    for form in (MASTER, MASTER.hex().encode(), MASTER.hex().upper().encode()):
        assert form not in raw
    assert b"D392100031000201" not in raw  # not even which SDs have keys
    assert path.stat().st_mode & 0o077 == 0


def test_wrong_store_key_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "keys.bin"
    FileKeyStore(path, generate_store_key()).put_master_key(LOCAL_AREA_SD_AID, 0x30, MASTER)
    with pytest.raises(WrongStoreKeyError, match="store key does not open"):
        FileKeyStore(path, generate_store_key())


def test_altered_file_refused(tmp_path: Path) -> None:
    path, sk = tmp_path / "keys.bin", generate_store_key()
    FileKeyStore(path, sk).put_master_key(LOCAL_AREA_SD_AID, 0x30, MASTER)
    raw = bytearray(path.read_bytes())
    raw[40] = ord("A") if raw[40] != ord("A") else ord("B")
    path.write_bytes(bytes(raw))
    with pytest.raises(KeyStoreError):
        FileKeyStore(path, sk)
    path.write_bytes(b"hello")
    with pytest.raises(KeyStoreError, match="not a gpcard key store"):
        FileKeyStore(path, sk)


def test_missing_and_bad_keys(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path / "k.bin", generate_store_key())
    with pytest.raises(KeyNotFoundError):
        store.master_key(LOCAL_AREA_SD_AID, 0x30)
    with pytest.raises(KeyNotFoundError):
        store.ap_key("nope")
    with pytest.raises(KeyStoreError, match="16, 24 or 32"):
        store.put_master_key(LOCAL_AREA_SD_AID, 0x30, bytes(10))
    with pytest.raises(KeyStoreError, match="32 bytes"):
        FileKeyStore(tmp_path / "k.bin", bytes(16))
    store.put_ap_key("x", bytes(16))
    with pytest.raises(KeyNotFoundError, match="version 5"):
        store.ap_key("x", 5)
    assert not (tmp_path / "k2.bin").exists()
