"""Per-card key diversification as docs/card-protocol.md "Keys" spells it, built here by hand from
AES-CMAC (itself checked against NIST SP 800-38B) so the layout, not the code, is the reference."""

from __future__ import annotations

import pytest

from gpcard.diversify import diversify_key, diversify_keys
from gpcard.kdf import aes_cmac

IIN = bytes.fromhex("42001392")
CIN = bytes.fromhex("00112233445566778899")


def by_hand(master: bytes, constant: int) -> bytes:
    bits = len(master) * 8
    out = b""
    for counter in range(1, len(master) // 16 + (1 if len(master) % 16 else 0) + 1):
        fixed = (
            bytes(11) + bytes([constant]) + b"\x00" + bits.to_bytes(2, "big") + bytes([counter]) + IIN + CIN
        )
        out += aes_cmac(master, fixed)
    return out[: len(master)]


@pytest.mark.parametrize("size", [16, 24, 32])
def test_each_key_follows_the_documented_layout(size: int) -> None:
    master = bytes(range(100, 100 + size))
    keys = diversify_keys(master, IIN, CIN, 0x30)
    assert (keys.enc, keys.mac, keys.dek) == (
        by_hand(master, 0x41),
        by_hand(master, 0x42),
        by_hand(master, 0x43),
    )
    assert keys.version == 0x30 and keys.key_length == size


def test_cards_get_different_keys() -> None:
    master = bytes(16)
    other = bytes.fromhex("00112233445566778898")
    assert diversify_key(master, 0x41, IIN, CIN) != diversify_key(master, 0x41, IIN, other)


def test_refusals() -> None:
    with pytest.raises(ValueError, match="master key"):
        diversify_key(bytes(15), 0x41, IIN, CIN)
    with pytest.raises(ValueError, match="10-byte CIN"):
        diversify_key(bytes(16), 0x41, IIN, CIN[:9])
