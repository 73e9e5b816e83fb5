"""AES primitives for the card side of SCP03 and the personalisation bureau (all from ``cryptography``)."""

from __future__ import annotations

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 16


def aes_cmac(key: bytes, data: bytes) -> bytes:
    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def aes_ecb_block(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - one block (ICV, KCV)
    return enc.update(block) + enc.finalize()


def aes_cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def pad80(data: bytes) -> bytes:
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % BLOCK)


def unpad80(data: bytes) -> bytes | None:
    """Remove ISO 9797-1 method 2 padding; None when it is not there."""
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= BLOCK:
        return None
    return stripped[:-1]


def kdf(key: bytes, constant: int, context: bytes, length_bits: int) -> bytes:
    """SCP03 data derivation (GP Amendment D §6.2.1): NIST SP 800-108 counter mode, PRF AES-CMAC,
    derivation data = 11 × 00 ‖ constant ‖ 00 ‖ L(2) ‖ i(1) ‖ context. Hand-written (a loop of
    CMACs) because the layout puts the counter between L and the context."""
    out = b""
    i = 1
    while len(out) * 8 < length_bits:
        block = (
            bytes(11) + bytes([constant]) + b"\x00" + length_bits.to_bytes(2, "big") + bytes([i]) + context
        )
        out += aes_cmac(key, block)
        i += 1
    return out[: length_bits // 8]


def kcv(key: bytes) -> bytes:
    """AES key check value: first 3 bytes of AES(key, 16 × 01)."""
    return aes_ecb_block(key, b"\x01" * BLOCK)[:3]
