"""The card side of SCP03 (GlobalPlatform Card Specification 2.3 Amendment D), S8 mode, i = 70:
pseudo-random card challenge, C-MAC / C-DECRYPTION checking, R-MAC / R-ENCRYPTION.

One :class:`CardChannel` is one session with one SD or card AP; it lives in volatile memory and
ends on SELECT, reset, or the first command whose MAC does not verify."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from vcard import sw
from vcard.crypto import BLOCK, aes_cbc, aes_cmac, aes_ecb_block, kdf, pad80, unpad80
from vcard.sw import CardError
from vcard.wire import Command

I_PARAMETER = 0x70  # pseudo-random card challenge, R-MAC and R-ENC supported
C_MAC, C_DEC, R_MAC, R_ENC = 0x01, 0x02, 0x10, 0x20
VALID_LEVELS = frozenset({0x01, 0x03, 0x11, 0x13, 0x33})
MAC_LEN = 8

CARD_CRYPTOGRAM, HOST_CRYPTOGRAM, CARD_CHALLENGE = 0x00, 0x01, 0x02
S_ENC, S_MAC, S_RMAC = 0x04, 0x06, 0x07


@dataclass
class StaticKeySet:
    version: int
    enc: bytes
    mac: bytes
    dek: bytes


class MacError(Exception):
    """A C-MAC that does not verify: the card answers 6982 and closes the channel."""


class CardChannel:
    def __init__(self, keys: StaticKeySet, aid: bytes, sequence_counter: int, diversification: bytes) -> None:
        self.keys = keys
        self.aid = aid
        self.sequence_counter = sequence_counter
        self.diversification = diversification
        self.host_challenge = b""
        self.card_challenge = b""
        self.s_enc = self.s_mac = self.s_rmac = b""
        self.mac_chain = bytes(BLOCK)
        self.counter = 0
        self.level = 0
        self.authenticated = False

    def initialize_update(self, host_challenge: bytes) -> bytes:
        """The INITIALIZE UPDATE answer; derives the session keys for this host challenge."""
        seq = self.sequence_counter.to_bytes(3, "big")
        card_cryptogram = self.start(host_challenge, kdf(self.keys.enc, CARD_CHALLENGE, seq + self.aid, 64))
        return (
            self.diversification
            + bytes([self.keys.version, 0x03, I_PARAMETER])
            + self.card_challenge
            + card_cryptogram
            + seq
        )

    def start(self, host_challenge: bytes, card_challenge: bytes) -> bytes:
        """Derive the session keys for these challenges; returns the card cryptogram."""
        bits = len(self.keys.enc) * 8
        self.host_challenge, self.card_challenge = host_challenge, card_challenge
        context = host_challenge + card_challenge
        self.s_enc = kdf(self.keys.enc, S_ENC, context, bits)
        self.s_mac = kdf(self.keys.mac, S_MAC, context, bits)
        self.s_rmac = kdf(self.keys.mac, S_RMAC, context, bits)
        return kdf(self.s_mac, CARD_CRYPTOGRAM, context, 64)

    def external_authenticate(self, cmd: Command) -> None:
        """Check the host cryptogram and the C-MAC of EXTERNAL AUTHENTICATE; CardError if wrong."""
        if cmd.p1 not in VALID_LEVELS or cmd.p2 != 0x00:
            raise CardError(sw.BAD_P1P2)
        if len(cmd.data) != 16 or not cmd.cla & 0x04:
            raise CardError(sw.SECURITY_STATUS)
        context = self.host_challenge + self.card_challenge
        expected = kdf(self.s_mac, HOST_CRYPTOGRAM, context, 64)
        mac = self._mac(cmd, cmd.data[:8])
        if not hmac.compare_digest(expected, cmd.data[:8]) or not hmac.compare_digest(
            mac[:MAC_LEN], cmd.data[8:]
        ):
            raise CardError(sw.SECURITY_STATUS)
        self.mac_chain = mac
        self.level = cmd.p1
        self.counter = 0
        self.authenticated = True

    def _mac(self, cmd: Command, body: bytes) -> bytes:
        cla = (cmd.cla & 0xF0) | 0x04  # logical channel bits are not MACed
        return aes_cmac(
            self.s_mac, self.mac_chain + bytes([cla, cmd.ins, cmd.p1, cmd.p2]) + cmd.lc_field + body
        )

    def unwrap(self, cmd: Command) -> Command:
        """Verify C-MAC and decrypt per the security level; MacError closes the channel."""
        self.counter += 1  # every command moves the counter (Amendment D §6.2.6)
        if not self.level & C_MAC:
            return cmd
        if not cmd.cla & 0x04 or len(cmd.data) < MAC_LEN:
            raise MacError
        body, mac = cmd.data[:-MAC_LEN], cmd.data[-MAC_LEN:]
        full = self._mac(cmd, body)
        if not hmac.compare_digest(full[:MAC_LEN], mac):
            raise MacError
        self.mac_chain = full
        if self.level & C_DEC and body:
            if len(body) % BLOCK:
                raise MacError
            icv = aes_ecb_block(self.s_enc, self.counter.to_bytes(BLOCK, "big"))
            plain = unpad80(aes_cbc(self.s_enc, icv, body, decrypt=True))
            if plain is None:
                raise MacError
            body = plain
        return Command(cmd.cla & ~0x04 & 0xFF, cmd.ins, cmd.p1, cmd.p2, body, cmd.le, cmd.extended, b"")

    def wrap(self, data: bytes, status: int) -> bytes:
        """Protect a response per the security level (error status words travel bare)."""
        if not self.level & R_MAC or not (status == sw.OK or status >> 8 in (0x62, 0x63)):
            return data + status.to_bytes(2, "big")
        if self.level & R_ENC and data:
            icv = aes_ecb_block(self.s_enc, b"\x80" + self.counter.to_bytes(BLOCK - 1, "big"))
            data = aes_cbc(self.s_enc, icv, pad80(data))
        rmac = aes_cmac(self.s_rmac, self.mac_chain + data + status.to_bytes(2, "big"))[:MAC_LEN]
        return data + rmac + status.to_bytes(2, "big")

    def decrypt_key(self, cryptogram: bytes) -> bytes:
        """A key sent under the static DEK (PUT KEY): AES-CBC, zero ICV."""
        return aes_cbc(self.keys.dek, bytes(BLOCK), cryptogram, decrypt=True)
