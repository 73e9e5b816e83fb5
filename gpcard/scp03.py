"""SCP03 host side (GlobalPlatform Card Specification 2.3, Amendment D), S8 mode.

A session is opened with INITIALIZE UPDATE / EXTERNAL AUTHENTICATE; then every command is wrapped
(C-DECRYPTION, C-MAC) and every response unwrapped (R-MAC, R-ENCRYPTION) according to the
security level. The MAC chaining value and the encryption counter depend only on the commands,
so a whole run of commands can be wrapped before any response is back (:meth:`wrap_all`); the
responses are then unwrapped in the same order (:meth:`unwrap_all`), each R-MAC checked against
the C-MAC of its own command. If the card stops part way (a script aborted at an unexpected
status word), :meth:`discard_pending` puts the host back in step with the card.

Crypto is from ``cryptography``; the protocol framing is written here because no maintained
Python library offers a host-side SCP03 that batches.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from gpcard.apdu import EXTENDED_LE_MAX, SHORT_LE_MAX, CommandAPDU, ResponseAPDU
from gpcard.kdf import AES_KEY_LENGTHS, aes_cmac, scp03_kdf

__all__ = [
    "C_DECRYPTION",
    "C_MAC",
    "R_ENCRYPTION",
    "R_MAC",
    "SECURITY_LEVELS",
    "CardCryptogramError",
    "InitializeUpdateResponse",
    "RMACError",
    "SCP03Error",
    "SCP03Session",
    "StaticKeys",
    "aes_kcv",
    "pad80",
    "pseudo_random_card_challenge",
    "unpad80",
]

C_MAC = 0x01
C_DECRYPTION = 0x02
R_MAC = 0x10
R_ENCRYPTION = 0x20
SECURITY_LEVELS = frozenset({0x01, 0x03, 0x11, 0x13, 0x33})

# Derivation constants, Amendment D Table 6-1.
CARD_CRYPTOGRAM = 0x00
HOST_CRYPTOGRAM = 0x01
CARD_CHALLENGE = 0x02
S_ENC = 0x04
S_MAC = 0x06
S_RMAC = 0x07

INS_INITIALIZE_UPDATE = 0x50
INS_EXTERNAL_AUTHENTICATE = 0x82
CLA_SECURE = 0x04  # CLA bit 3: GlobalPlatform secure messaging
MAC_LEN = 8  # S8 mode
BLOCK = 16


class SCP03Error(ValueError):
    """A secure channel failure on the host side: malformed response, wrong state, bad padding."""


class CardCryptogramError(SCP03Error):
    """The card's cryptogram does not match: wrong keys, or not the card we think it is."""


class RMACError(SCP03Error):
    """A response's R-MAC does not verify: the response was altered or is out of order."""


def pad80(data: bytes, block: int = BLOCK) -> bytes:
    """ISO/IEC 9797-1 method 2 padding (GPC B.2.3): 80 then 00s to a whole block, always added."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % block)


def unpad80(data: bytes) -> bytes:
    stripped = data.rstrip(b"\x00")
    if not stripped or stripped[-1] != 0x80 or len(data) - len(stripped) >= BLOCK:
        raise SCP03Error("bad padding in decrypted response")
    return stripped[:-1]


def _aes_ecb(key: bytes, block: bytes) -> bytes:
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305 - one block, as the spec says
    return enc.update(block) + enc.finalize()


def _aes_cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(data) + ctx.finalize()


def aes_kcv(key: bytes) -> bytes:
    """AES key check value (GPC 2.3 Amendment D): first 3 bytes of AES(key, 16 × 01)."""
    return _aes_ecb(key, b"\x01" * BLOCK)[:3]


def pseudo_random_card_challenge(enc_key: bytes, sequence_counter: bytes, aid: bytes) -> bytes:
    """Card challenge when i has b5 set (Amendment D §6.2.2.1): KDF(Key-ENC, 02, counter ‖ AID, 64)."""
    return scp03_kdf(enc_key, CARD_CHALLENGE, sequence_counter + aid, 64)


@dataclass(frozen=True)
class StaticKeys:
    """One SCP03 key set (ENC, MAC, DEK) and its key version number. Keys never appear in repr."""

    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    dek: bytes = field(repr=False)
    version: int = 0x30

    def __post_init__(self) -> None:
        lengths = {len(self.enc), len(self.mac), len(self.dek)}
        if len(lengths) != 1 or lengths.pop() not in AES_KEY_LENGTHS:
            raise SCP03Error("ENC, MAC and DEK must be AES keys of one length (16, 24 or 32 bytes)")
        if not 0 <= self.version <= 0xFF:
            raise SCP03Error(f"key version {self.version} is not one byte")

    @classmethod
    def single(cls, key: bytes, version: int = 0x30) -> StaticKeys:
        """ENC = MAC = DEK = ``key`` (test cards, card AP mutual authentication)."""
        return cls(key, key, key, version)

    @property
    def key_length(self) -> int:
        return len(self.enc)


@dataclass(frozen=True)
class InitializeUpdateResponse:
    diversification_data: bytes
    key_version: int
    scp: int
    i: int
    card_challenge: bytes
    card_cryptogram: bytes
    sequence_counter: bytes | None

    @classmethod
    def parse(cls, data: bytes) -> InitializeUpdateResponse:
        """Parse the INITIALIZE UPDATE response data (S8 mode: 29 bytes, 32 with a sequence counter)."""
        data = bytes(data)
        if len(data) not in (29, 32):
            raise SCP03Error(f"INITIALIZE UPDATE response has {len(data)} bytes, expected 29 or 32 (S8 mode)")
        scp, i = data[11], data[12]
        if scp != 0x03:
            raise SCP03Error(f"the card speaks SCP{scp:02X}, not SCP03")
        if i & 0x01:
            raise SCP03Error(f"i = {i:02X} asks for S16 mode; only S8 is supported")
        seq = data[29:32] if len(data) == 32 else None
        if i & 0x10 and seq is None:
            raise SCP03Error(f"i = {i:02X} (pseudo-random challenge) but no sequence counter")
        return cls(data[:10], data[10], scp, i, data[13:21], data[21:29], seq)


@dataclass(frozen=True)
class _Pending:
    plain: bool  # EXTERNAL AUTHENTICATE: its response carries no R-MAC
    mac_chain: bytes  # this command's full C-MAC: the chaining value its R-MAC uses
    counter: int  # this command's encryption counter: the ICV its R-ENC uses


class SCP03Session:
    """The host end of one SCP03 session with one security domain (or card AP)."""

    def __init__(
        self,
        keys: StaticKeys,
        *,
        security_level: int = 0x33,
        host_challenge: bytes | None = None,
    ) -> None:
        if security_level not in SECURITY_LEVELS:
            raise SCP03Error(f"security level {security_level:02X} not one of 01, 03, 11, 13, 33")
        if host_challenge is not None and len(host_challenge) != 8:
            raise SCP03Error("the host challenge has 8 bytes (S8 mode)")
        self.keys = keys
        self.security_level = security_level
        self.host_challenge = bytes(host_challenge) if host_challenge is not None else secrets.token_bytes(8)
        self.card: InitializeUpdateResponse | None = None
        self._s_enc = self._s_mac = self._s_rmac = b""
        self._mac_chain = bytes(BLOCK)
        self._counter = 0
        self._pending: deque[_Pending] = deque()
        self._settled: tuple[bytes, int] = (self._mac_chain, 0)
        self.authenticated = False

    # --- handshake ------------------------------------------------------------------------

    def initialize_update(self) -> CommandAPDU:
        """INITIALIZE UPDATE (80 50 kvn 00, host challenge)."""
        return CommandAPDU(
            0x80, INS_INITIALIZE_UPDATE, self.keys.version, 0x00, self.host_challenge, le=SHORT_LE_MAX
        )

    def authenticate(self, response: ResponseAPDU | bytes) -> CommandAPDU:
        """Check the card cryptogram in the INITIALIZE UPDATE response; return EXTERNAL AUTHENTICATE.

        ``response`` is the response APDU (its SW must be 9000) or just its data. The EXTERNAL
        AUTHENTICATE response is unwrapped like any other (it comes first), so EXTERNAL
        AUTHENTICATE can travel in the same batch as the commands after it."""
        self.close()  # a new handshake ends whatever session this object had
        if isinstance(response, ResponseAPDU):
            if response.sw != 0x9000:
                raise SCP03Error(f"INITIALIZE UPDATE answered SW {response.sw:04X}")
            response = response.data
        card = InitializeUpdateResponse.parse(response)
        if self.keys.version not in (0x00, card.key_version):
            raise SCP03Error(
                f"card used key version {card.key_version:02X}, expected {self.keys.version:02X}"
            )
        context = self.host_challenge + card.card_challenge
        bits = self.keys.key_length * 8
        self._s_enc = scp03_kdf(self.keys.enc, S_ENC, context, bits)
        self._s_mac = scp03_kdf(self.keys.mac, S_MAC, context, bits)
        self._s_rmac = scp03_kdf(self.keys.mac, S_RMAC, context, bits)
        expected = scp03_kdf(self._s_mac, CARD_CRYPTOGRAM, context, 64)
        if not hmac.compare_digest(expected, card.card_cryptogram):
            self.close()
            raise CardCryptogramError("card cryptogram does not match: wrong keys or key version")
        self.card = card
        host_cryptogram = scp03_kdf(self._s_mac, HOST_CRYPTOGRAM, context, 64)
        self._mac_chain = bytes(BLOCK)
        self._counter = 0
        self._pending.clear()
        self.authenticated = True
        ea = CommandAPDU(0x80, INS_EXTERNAL_AUTHENTICATE, self.security_level, 0x00, host_cryptogram)
        wrapped = self._mac_and_frame(ea, host_cryptogram)
        self._pending.append(_Pending(True, self._mac_chain, self._counter))
        self._settled = (self._mac_chain, self._counter)
        return wrapped

    # --- commands -------------------------------------------------------------------------

    def wrap(self, command: CommandAPDU | bytes) -> CommandAPDU:
        """Protect one command per the security level; its response must later go to :meth:`unwrap`."""
        if not self.authenticated:
            raise SCP03Error("no secure channel: run INITIALIZE UPDATE / EXTERNAL AUTHENTICATE first")
        cmd = command if isinstance(command, CommandAPDU) else CommandAPDU.parse(command)
        if cmd.cla & CLA_SECURE:
            raise SCP03Error(f"CLA {cmd.cla:02X} already has the secure messaging bit")
        if cmd.cla & 0x40 or cmd.cla & 0x20:
            raise SCP03Error(f"CLA {cmd.cla:02X}: only logical channels 0-3 are supported")
        self._counter += 1  # incremented for every command, with or without data (Amendment D §6.2.6)
        data = cmd.data
        if self.security_level & C_DECRYPTION and data:
            icv = _aes_ecb(self._s_enc, self._counter.to_bytes(BLOCK, "big"))
            data = _aes_cbc(self._s_enc, icv, pad80(data))
        wrapped = self._mac_and_frame(cmd, data)
        self._pending.append(_Pending(False, self._mac_chain, self._counter))
        return wrapped

    def _mac_and_frame(self, cmd: CommandAPDU, data: bytes) -> CommandAPDU:
        body_len = len(data) + MAC_LEN
        le = cmd.le
        extended = cmd.extended or body_len > 255 or (le or 0) > SHORT_LE_MAX
        if le is not None:
            le = EXTENDED_LE_MAX if extended else SHORT_LE_MAX  # room for R-MAC / padding
        lc = b"\x00" + body_len.to_bytes(2, "big") if extended else bytes([body_len])
        if body_len > 0xFFFF:
            raise SCP03Error(f"wrapped command data of {body_len} bytes is too long")
        mac_cla = (cmd.cla & 0xF0) | CLA_SECURE  # logical channel 0 for the MAC, per Amendment D
        mac_input = self._mac_chain + bytes([mac_cla, cmd.ins, cmd.p1, cmd.p2]) + lc + data
        self._mac_chain = aes_cmac(self._s_mac, mac_input)
        return CommandAPDU(
            cmd.cla | CLA_SECURE,
            cmd.ins,
            cmd.p1,
            cmd.p2,
            data + self._mac_chain[:MAC_LEN],
            le=le,
            extended=extended,
        )

    def unwrap(self, response: ResponseAPDU | bytes) -> ResponseAPDU:
        """Check and strip the protection of the response to the oldest wrapped command."""
        resp = response if isinstance(response, ResponseAPDU) else ResponseAPDU.parse(response)
        if not self._pending:
            raise SCP03Error("a response arrived for which no command was wrapped")
        entry = self._pending.popleft()
        self._settled = (entry.mac_chain, entry.counter)
        if entry.plain or not self.security_level & R_MAC:
            return resp
        sw1 = resp.sw1
        if resp.sw != 0x9000 and sw1 not in (0x62, 0x63):
            # Error status words carry no R-MAC and no data (Amendment D §6.2.5).
            return resp
        if len(resp.data) < MAC_LEN:
            raise RMACError(f"response of {len(resp.data)} bytes cannot hold an R-MAC")
        body, rmac = resp.data[:-MAC_LEN], resp.data[-MAC_LEN:]
        expected = aes_cmac(self._s_rmac, entry.mac_chain + body + resp.sw.to_bytes(2, "big"))[:MAC_LEN]
        if not hmac.compare_digest(expected, rmac):
            raise RMACError(f"R-MAC does not verify (SW {resp.sw:04X})")
        if self.security_level & R_ENCRYPTION and body:
            if len(body) % BLOCK:
                raise SCP03Error(f"encrypted response of {len(body)} bytes is not whole AES blocks")
            counter_block = b"\x80" + entry.counter.to_bytes(BLOCK - 1, "big")
            icv = _aes_ecb(self._s_enc, counter_block)
            body = unpad80(_aes_cbc(self._s_enc, icv, body, decrypt=True))
        return ResponseAPDU(body, resp.sw)

    def wrap_all(self, commands: list[CommandAPDU] | list[bytes]) -> list[CommandAPDU]:
        """Wrap a run of commands in one go (a batch for one round trip)."""
        return [self.wrap(c) for c in commands]

    def unwrap_all(self, responses: list[ResponseAPDU] | list[bytes]) -> list[ResponseAPDU]:
        """Unwrap responses in order; may be fewer than the wrapped commands (then discard the rest)."""
        return [self.unwrap(r) for r in responses]

    @property
    def pending(self) -> int:
        """Commands wrapped whose responses have not been unwrapped yet."""
        return len(self._pending)

    def discard_pending(self) -> int:
        """Forget wrapped commands the card never received; returns how many were dropped.

        The card's MAC chaining value and counter moved only for commands it processed, which are
        exactly those whose responses were unwrapped."""
        dropped = len(self._pending)
        self._pending.clear()
        self._mac_chain, self._counter = self._settled
        return dropped

    def close(self) -> None:
        """Forget the session keys (after 6982 the card has closed its side too)."""
        self._s_enc = self._s_mac = self._s_rmac = b""
        self._pending.clear()
        self.authenticated = False

    def encrypt_key(self, key: bytes) -> bytes:
        """Encrypt a key for PUT KEY / STORE DATA with the static DEK (AES-CBC, zero ICV)."""
        if len(key) % BLOCK:
            raise SCP03Error("AES keys are whole blocks; nothing to pad")
        return _aes_cbc(self.keys.dek, bytes(BLOCK), key)
