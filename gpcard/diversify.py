"""Per-card SCP03 keys diversified from a region master key (docs/card-protocol.md "Keys").

Each key of the set is NIST SP 800-108 counter-mode KDF output with PRF AES-CMAC, laid out exactly
as SCP03's own derivation (Amendment D §6.2.1): label 11 × 00 ‖ constant (41 ENC, 42 MAC, 43 DEK),
separation 00, L = key length in bits, counter 01 (02 for the second half of a 256-bit key),
context IIN ‖ CIN (values of GET DATA 0042 and 0045, without their tags).
"""

from __future__ import annotations

from gpcard.kdf import AES_KEY_LENGTHS, scp03_kdf
from gpcard.scp03 import StaticKeys

__all__ = ["DIVERSIFY_ENC", "DIVERSIFY_MAC", "DIVERSIFY_DEK", "diversify_key", "diversify_keys"]

DIVERSIFY_ENC = 0x41
DIVERSIFY_MAC = 0x42
DIVERSIFY_DEK = 0x43


def diversify_key(master: bytes, constant: int, iin: bytes, cin: bytes) -> bytes:
    """One card key: same length as ``master``."""
    if len(master) not in AES_KEY_LENGTHS:
        raise ValueError(f"a master key is an AES key of 16, 24 or 32 bytes, not {len(master)}")
    if not iin or len(cin) != 10:
        raise ValueError("diversification needs the IIN value and the 10-byte CIN value")
    return scp03_kdf(master, constant, bytes(iin) + bytes(cin), len(master) * 8)


def diversify_keys(master: bytes, iin: bytes, cin: bytes, version: int = 0x30) -> StaticKeys:
    """The card's SCP03 key set (ENC, MAC, DEK) for one SD, from that SD's master key."""
    return StaticKeys(
        diversify_key(master, DIVERSIFY_ENC, iin, cin),
        diversify_key(master, DIVERSIFY_MAC, iin, cin),
        diversify_key(master, DIVERSIFY_DEK, iin, cin),
        version,
    )
