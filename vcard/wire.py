"""The card's own parsing of command APDUs (ISO/IEC 7816-3/-4, short and extended) and of BER-TLV.

Written here rather than shared with the host library so that card and host meet only as bytes."""

from __future__ import annotations

from dataclasses import dataclass

from vcard import sw
from vcard.sw import CardError


@dataclass(frozen=True)
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None  # None: no Le field; 256 / 65536 for 00 / 0000
    extended: bool = False
    lc_field: bytes = b""  # the Lc bytes exactly as sent (the C-MAC covers them)

    @property
    def header(self) -> bytes:
        return bytes([self.cla, self.ins, self.p1, self.p2])

    def replace(self, **kw: object) -> Command:
        values = {**self.__dict__, **kw}
        return Command(**values)  # type: ignore[arg-type]


def parse_command(raw: bytes) -> Command:
    """Parse one C-APDU; any length inconsistency answers 6700."""
    n = len(raw)
    if n < 4:
        raise CardError(sw.WRONG_LENGTH)
    cla, ins, p1, p2 = raw[0], raw[1], raw[2], raw[3]
    if n == 4:
        return Command(cla, ins, p1, p2)
    if n == 5:
        return Command(cla, ins, p1, p2, le=raw[4] or 256)
    if raw[4] != 0:  # short Lc
        lc = raw[4]
        if n == 5 + lc:
            return Command(cla, ins, p1, p2, bytes(raw[5:]), lc_field=bytes(raw[4:5]))
        if n == 6 + lc:
            return Command(cla, ins, p1, p2, bytes(raw[5:-1]), le=raw[-1] or 256, lc_field=bytes(raw[4:5]))
        raise CardError(sw.WRONG_LENGTH)
    # extended length: 00 then two bytes
    if n == 7:
        return Command(cla, ins, p1, p2, le=int.from_bytes(raw[5:7], "big") or 65536, extended=True)
    if n < 7:
        raise CardError(sw.WRONG_LENGTH)
    lc = int.from_bytes(raw[5:7], "big")
    if lc == 0:
        raise CardError(sw.WRONG_LENGTH)
    if n == 7 + lc:
        return Command(cla, ins, p1, p2, bytes(raw[7:]), extended=True, lc_field=bytes(raw[4:7]))
    if n == 9 + lc:
        le = int.from_bytes(raw[-2:], "big") or 65536
        return Command(cla, ins, p1, p2, bytes(raw[7:-2]), le=le, extended=True, lc_field=bytes(raw[4:7]))
    raise CardError(sw.WRONG_LENGTH)


# --- BER-TLV ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TLV:
    tag: int
    value: bytes
    constructed: bool

    def children(self) -> list[TLV]:
        return decode(self.value)


def _read_tag(data: bytes, i: int) -> tuple[int, bool, int]:
    if i >= len(data):
        raise CardError(sw.BAD_DATA)
    first = data[i]
    constructed = bool(first & 0x20)
    tag = first
    i += 1
    if first & 0x1F == 0x1F:
        while True:
            if i >= len(data) or tag > 0xFFFFFF:
                raise CardError(sw.BAD_DATA)
            b = data[i]
            tag = (tag << 8) | b
            i += 1
            if not b & 0x80:
                break
    return tag, constructed, i


def read_length(data: bytes, i: int) -> tuple[int, int]:
    """BER length (short form, or 81/82/83 long form); returns (length, next offset)."""
    if i >= len(data):
        raise CardError(sw.BAD_DATA)
    first = data[i]
    if first < 0x80:
        return first, i + 1
    count = first & 0x7F
    if count == 0 or count > 3 or i + 1 + count > len(data):
        raise CardError(sw.BAD_DATA)
    return int.from_bytes(data[i + 1 : i + 1 + count], "big"), i + 1 + count


def decode(data: bytes) -> list[TLV]:
    """Decode a run of BER-TLV objects; anything malformed answers 6A80."""
    out = []
    i = 0
    while i < len(data):
        tag, constructed, i = _read_tag(data, i)
        length, i = read_length(data, i)
        if i + length > len(data):
            raise CardError(sw.BAD_DATA)
        out.append(TLV(tag, bytes(data[i : i + length]), constructed))
        i += length
    return out


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    if n < 0x10000:
        return b"\x82" + n.to_bytes(2, "big")
    return b"\x83" + n.to_bytes(3, "big")


def tlv(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    return tag_bytes + encode_length(len(value)) + value


def read_lv_fields(data: bytes, count: int) -> list[bytes]:
    """``count`` length-prefixed fields (BER lengths) as in INSTALL data; the data must end there."""
    fields = []
    i = 0
    for _ in range(count):
        length, i = read_length(data, i)
        if i + length > len(data):
            raise CardError(sw.BAD_DATA)
        fields.append(bytes(data[i : i + length]))
        i += length
    if i != len(data):
        raise CardError(sw.BAD_DATA)
    return fields
