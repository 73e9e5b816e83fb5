"""AES-CMAC (NIST SP 800-38B) and the NIST SP 800-108 counter-mode KDF with AES-CMAC as PRF.

Both come from ``cryptography``. Its KBKDFCMAC matches the SCP03 layout exactly when given the
whole fixed input (``fixed=``) and the counter position (``CounterLocation.MiddleFixed`` with
``break_location``): GP Amendment D §6.2.1 puts the counter *between* ``label ‖ 00 ‖ L`` and the
context, which is SP 800-108's "counter in the middle of the fixed data" (CAVP MIDDLE_FIXED); the
``label``/``context`` convenience form of KBKDFCMAC cannot express it, as it puts L after the
context. The tests check this against the NIST CAVP vectors for both counter positions.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import cmac as _cmac
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode

__all__ = ["aes_cmac", "kdf_counter_cmac", "scp03_kdf", "AES_KEY_LENGTHS"]

AES_KEY_LENGTHS = (16, 24, 32)


def _check_key(key: bytes) -> None:
    if len(key) not in AES_KEY_LENGTHS:
        raise ValueError(f"an AES key has 16, 24 or 32 bytes, not {len(key)}")


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """The full 16-byte AES-CMAC of ``data``."""
    _check_key(key)
    mac = _cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def kdf_counter_cmac(
    key: bytes, *, before: bytes, after: bytes, length_bits: int, counter_bytes: int = 1
) -> bytes:
    """SP 800-108 counter mode, PRF AES-CMAC: K(i) = CMAC(key, before ‖ [i] ‖ after), i = 1, 2, ...

    ``before`` empty is the "counter before fixed data" layout. Returns ``length_bits`` / 8 bytes.
    """
    _check_key(key)
    if length_bits <= 0 or length_bits % 8:
        raise ValueError(f"output length must be a positive number of bytes, got {length_bits} bits")
    location = CounterLocation.MiddleFixed if before else CounterLocation.BeforeFixed
    kdf = KBKDFCMAC(
        algorithms.AES,
        Mode.CounterMode,
        length_bits // 8,
        counter_bytes,
        None,
        location,
        None,
        None,
        before + after,
        break_location=len(before) if before else None,
    )
    return kdf.derive(key)


def scp03_kdf(key: bytes, constant: int, context: bytes, length_bits: int) -> bytes:
    """GP Amendment D §6.2.1 data derivation: label (11 × 00 ‖ constant) ‖ 00 ‖ L(2) ‖ i(1) ‖ context."""
    if not 0 <= constant <= 0xFF:
        raise ValueError("derivation constant is one byte")
    if not 0 < length_bits <= 0xFFFF:
        raise ValueError("L must fit in two bytes")
    before = bytes(11) + bytes([constant]) + b"\x00" + length_bits.to_bytes(2, "big")
    return kdf_counter_cmac(key, before=before, after=context, length_bits=length_bits)
