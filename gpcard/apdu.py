"""Command and response APDUs (ISO/IEC 7816-3 §12.1, 7816-4 §5.1): short and extended, cases 1-4.

``le`` is the maximum number of response bytes expected: None when absent, 1..256 (short; 256 is
encoded 00) or 1..65536 (extended; 65536 is encoded 0000). Parsing is strict: a byte string that
is not exactly one of the seven encodings raises :class:`APDUError`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from gpcard.sw import CardError

__all__ = ["APDUError", "CommandAPDU", "ResponseAPDU", "SHORT_LE_MAX", "EXTENDED_LE_MAX"]

SHORT_LC_MAX = 255
SHORT_LE_MAX = 256
EXTENDED_LC_MAX = 65535
EXTENDED_LE_MAX = 65536


class APDUError(ValueError):
    """A malformed command or response APDU."""


def _byte(name: str, value: int) -> None:
    if not 0 <= value <= 0xFF:
        raise APDUError(f"{name} must be one byte, got {value!r}")


@dataclass(frozen=True)
class CommandAPDU:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None
    extended: bool = False  # force extended length even when short would do

    def __post_init__(self) -> None:
        for name in ("cla", "ins", "p1", "p2"):
            _byte(name.upper(), getattr(self, name))
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))
        if len(self.data) > EXTENDED_LC_MAX:
            raise APDUError(f"command data of {len(self.data)} bytes exceeds {EXTENDED_LC_MAX}")
        if self.le is not None and not 1 <= self.le <= EXTENDED_LE_MAX:
            raise APDUError(f"Le must be 1..{EXTENDED_LE_MAX} or absent, got {self.le}")

    @property
    def case(self) -> int:
        """ISO case: 1 no data/no Le, 2 Le only, 3 data only, 4 data and Le."""
        return 1 + (self.le is not None) + 2 * bool(self.data)

    @property
    def is_extended(self) -> bool:
        return self.extended or len(self.data) > SHORT_LC_MAX or (self.le or 0) > SHORT_LE_MAX

    @property
    def header(self) -> bytes:
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def encode(self) -> bytes:
        out = self.header
        if self.is_extended:
            if self.data:
                out += b"\x00" + len(self.data).to_bytes(2, "big") + self.data
                if self.le is not None:
                    out += (self.le & 0xFFFF).to_bytes(2, "big")
            elif self.le is not None:
                out += b"\x00" + (self.le & 0xFFFF).to_bytes(2, "big")
            return out
        if self.data:
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            out += bytes([self.le & 0xFF])
        return out

    def __bytes__(self) -> bytes:
        return self.encode()

    def hex(self) -> str:
        return self.encode().hex().upper()

    def with_(self, **changes: object) -> CommandAPDU:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def parse(cls, raw: bytes) -> CommandAPDU:
        raw = bytes(raw)
        n = len(raw)
        if n < 4:
            raise APDUError(f"a command APDU has at least 4 bytes, got {n}")
        cla, ins, p1, p2 = raw[:4]
        if n == 4:
            return cls(cla, ins, p1, p2)
        b4 = raw[4]
        if n == 5:
            return cls(cla, ins, p1, p2, le=b4 or SHORT_LE_MAX)
        if b4 != 0:
            lc = b4
            if n == 5 + lc:
                return cls(cla, ins, p1, p2, raw[5:])
            if n == 6 + lc:
                return cls(cla, ins, p1, p2, raw[5:-1], le=raw[-1] or SHORT_LE_MAX)
            raise APDUError(f"short Lc {lc} does not match the {n - 5} bytes after it")
        if n < 7:
            raise APDUError(f"extended length APDU truncated ({n} bytes)")
        value = int.from_bytes(raw[5:7], "big")
        if n == 7:
            return cls(cla, ins, p1, p2, le=value or EXTENDED_LE_MAX, extended=True)
        lc = value
        if lc == 0:
            raise APDUError("extended Lc of 0 with data following")
        if n == 7 + lc:
            return cls(cla, ins, p1, p2, raw[7:], extended=True)
        if n == 9 + lc:
            le = int.from_bytes(raw[-2:], "big") or EXTENDED_LE_MAX
            return cls(cla, ins, p1, p2, raw[7:-2], le=le, extended=True)
        raise APDUError(f"extended Lc {lc} does not match the {n - 7} bytes after it")

    @classmethod
    def from_hex(cls, text: str) -> CommandAPDU:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise APDUError(f"not hex: {text!r}") from None
        return cls.parse(raw)


@dataclass(frozen=True)
class ResponseAPDU:
    data: bytes
    sw: int

    def __post_init__(self) -> None:
        if not 0 <= self.sw <= 0xFFFF:
            raise APDUError(f"SW must be two bytes, got {self.sw!r}")
        if not isinstance(self.data, bytes):
            object.__setattr__(self, "data", bytes(self.data))

    @property
    def sw1(self) -> int:
        return self.sw >> 8

    @property
    def sw2(self) -> int:
        return self.sw & 0xFF

    @classmethod
    def parse(cls, raw: bytes) -> ResponseAPDU:
        raw = bytes(raw)
        if len(raw) < 2:
            raise APDUError(f"a response APDU has at least 2 bytes (SW1 SW2), got {len(raw)}")
        return cls(raw[:-2], int.from_bytes(raw[-2:], "big"))

    def encode(self) -> bytes:
        return self.data + self.sw.to_bytes(2, "big")

    def __bytes__(self) -> bytes:
        return self.encode()

    def hex(self) -> str:
        return self.encode().hex().upper()

    def check(self, *expected: int, command: str = "") -> ResponseAPDU:
        """Return self if SW is one of ``expected`` (default 9000), else raise CardError."""
        if self.sw not in (expected or (0x9000,)):
            raise CardError(self.sw, command=command)
        return self
