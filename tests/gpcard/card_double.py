"""A minimal card end of SCP03 for behaviour tests of the host (batching, rewinding, tampering).

Written separately from gpcard.scp03 (straight from Amendment D), so the host is not only checked
against itself; the byte-exact behaviour of gpcard.scp03 is checked against public traces in
test_scp03_trace.py."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gpcard.kdf import aes_cmac, scp03_kdf


def _ecb(key: bytes, block: bytes) -> bytes:
    e = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return e.update(block) + e.finalize()


def _cbc(key: bytes, iv: bytes, data: bytes, decrypt: bool = False) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CBC(iv))
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(data) + x.finalize()


class CardSCP03:
    def __init__(
        self, enc: bytes, mac: bytes, kvn: int = 0x30, card_challenge: bytes = bytes(range(8))
    ) -> None:
        self.enc, self.mac, self.kvn, self.card_challenge = enc, mac, kvn, card_challenge
        self.level = 0
        self.chain = bytes(16)
        self.counter = 0
        self.open = False

    def initialize_update(self, apdu: bytes) -> bytes:
        host_challenge = apdu[5:13]
        ctx = host_challenge + self.card_challenge
        bits = len(self.enc) * 8
        self.s_enc = scp03_kdf(self.enc, 0x04, ctx, bits)
        self.s_mac = scp03_kdf(self.mac, 0x06, ctx, bits)
        self.s_rmac = scp03_kdf(self.mac, 0x07, ctx, bits)
        self.host_cryptogram = scp03_kdf(self.s_mac, 0x01, ctx, 64)
        card_cryptogram = scp03_kdf(self.s_mac, 0x00, ctx, 64)
        self.chain, self.counter, self.open = bytes(16), 0, False
        return (
            bytes(10)
            + bytes([self.kvn, 0x03, 0x70])
            + self.card_challenge
            + card_cryptogram
            + b"\x00\x00\x01"
            + b"\x90\x00"
        )

    def _check_mac(self, apdu: bytes) -> bytes | None:
        ext = apdu[4] == 0 and len(apdu) > 7
        hdr_len = 7 if ext else 5
        lc = int.from_bytes(apdu[5:7], "big") if ext else apdu[4]
        body = apdu[hdr_len : hdr_len + lc]
        mac_cla = (apdu[0] & 0xF0) | 0x04
        mac = aes_cmac(self.s_mac, self.chain + bytes([mac_cla]) + apdu[1:hdr_len] + body[:-8])
        if mac[:8] != body[-8:]:
            self.open = False
            return None
        self.chain = mac
        return body[:-8]

    def external_authenticate(self, apdu: bytes) -> bytes:
        data = self._check_mac(apdu)
        if data is None or data != self.host_cryptogram:
            return b"\x69\x82"
        self.level, self.open = apdu[2], True
        return b"\x90\x00"

    def command(self, apdu: bytes, answer: bytes = b"", sw: bytes = b"\x90\x00") -> tuple[bytes, bytes]:
        """Unwrap a command (returns its plain data) and protect ``answer``; returns (data, R-APDU)."""
        if not self.open:
            return b"", b"\x69\x85"
        self.counter += 1
        data = self._check_mac(apdu)
        if data is None:
            return b"", b"\x69\x82"
        if self.level & 0x02 and data:
            icv = _ecb(self.s_enc, self.counter.to_bytes(16, "big"))
            plain = _cbc(self.s_enc, icv, data, decrypt=True).rstrip(b"\x00")
            assert plain.endswith(b"\x80")
            data = plain[:-1]
        if sw != b"\x90\x00" and sw[0] not in (0x62, 0x63):
            return data, sw
        body = answer
        if self.level & 0x20 and body:
            icv = _ecb(self.s_enc, b"\x80" + self.counter.to_bytes(15, "big"))
            padded = body + b"\x80" + bytes(-(len(body) + 1) % 16)
            body = _cbc(self.s_enc, icv, padded)
        if self.level & 0x10:
            body += aes_cmac(self.s_rmac, self.chain + body + sw)[:8]
        return data, body + sw
