"""The card's parser for card AP descriptions (docs/card-protocol.md, "Card AP description").

Strict: unknown or repeated tags, missing mandatory ones, out-of-range values answer 6A80."""

from __future__ import annotations

from dataclasses import dataclass

from vcard import sw
from vcard.sw import CardError
from vcard.wire import TLV, decode

TYPES = {0x41: "A", 0x43: "C", 0x44: "D", 0x58: "X"}
RULES = {0x00, 0x01, 0x02, 0x03, 0x0F, 0xFF}
BINARY, RECORDS = 0x01, 0x02


@dataclass(frozen=True)
class PinPolicy:
    source: int
    min_length: int
    max_length: int
    retry_limit: int


@dataclass(frozen=True)
class FileSpec:
    fid: int
    structure: int
    length: int  # binary length, or record length
    count: int  # 1 for binary, record count for records
    read_rule: int
    update_rule: int

    @property
    def size(self) -> int:
        return self.length * self.count


@dataclass(frozen=True)
class Description:
    ap_type: str
    pin: PinPolicy | None
    files: tuple[FileSpec, ...]
    raw: bytes

    @property
    def cost(self) -> int:
        """Memory charged for an instance: 64 + Σ(32 + file size)."""
        return 64 + sum(32 + f.size for f in self.files)

    def file(self, fid: int) -> FileSpec | None:
        return next((f for f in self.files if f.fid == fid), None)


def _bad() -> CardError:
    return CardError(sw.BAD_DATA)


def _fields(
    tlv: TLV, sizes: dict[int, int], mandatory: set[int], repeat: frozenset[int] | set[int] = frozenset()
) -> dict[int, list[bytes]]:
    out: dict[int, list[bytes]] = {}
    for child in tlv.children():
        if child.tag not in sizes:
            raise _bad()
        if child.tag in out and child.tag not in repeat:
            raise _bad()
        want = sizes[child.tag]
        if want >= 0 and len(child.value) != want:
            raise _bad()
        out.setdefault(child.tag, []).append(child.value)
    if not mandatory <= out.keys():
        raise _bad()
    return out


def parse_description(raw: bytes) -> Description:
    items = decode(raw)
    if len(items) != 1 or items[0].tag != 0xA0:
        raise _bad()
    top = _fields(
        items[0], {0x80: 1, 0x81: 1, 0xA1: -1, 0xA2: -1, 0xA3: -1}, {0x80, 0x81, 0xA2, 0xA3}, {0xA2}
    )
    ap_type = TYPES.get(top[0x80][0][0])
    if ap_type is None or top[0x81][0] != b"\x01":
        raise _bad()
    pin = None
    if 0xA1 in top:
        p = _fields(
            TLV(0xA1, top[0xA1][0], True), {0x80: 1, 0x81: 1, 0x82: 1, 0x83: 1}, {0x80, 0x81, 0x82, 0x83}
        )
        pin = PinPolicy(p[0x80][0][0], p[0x81][0][0], p[0x82][0][0], p[0x83][0][0])
        if pin.source not in (1, 2) or not 4 <= pin.min_length <= pin.max_length <= 16:
            raise _bad()
        if not 1 <= pin.retry_limit <= 15:
            raise _bad()
    files = []
    if not 1 <= len(top[0xA2]) <= 16:
        raise _bad()
    for value in top[0xA2]:
        f = _fields(
            TLV(0xA2, value, True),
            {0x80: 2, 0x81: 1, 0x82: 2, 0x83: 1, 0x84: 1},
            {0x80, 0x81, 0x82, 0x83, 0x84},
        )
        fid = int.from_bytes(f[0x80][0], "big")
        structure = f[0x81][0][0]
        size = f[0x82][0]
        if fid in (0x3F00, 0x3FFF, 0xFFFF) or structure not in (BINARY, RECORDS):
            raise _bad()
        if structure == BINARY:
            length, count = int.from_bytes(size, "big"), 1
        else:
            count, length = size[0], size[1]
        if length == 0 or count == 0:
            raise _bad()
        read_rule, update_rule = f[0x83][0][0], f[0x84][0][0]
        if read_rule not in RULES or update_rule not in RULES:
            raise _bad()
        files.append(FileSpec(fid, structure, length, count, read_rule, update_rule))
    if len({f.fid for f in files}) != len(files):
        raise _bad()
    if pin is None and any(r in (1, 2, 3) for f in files for r in (f.read_rule, f.update_rule)):
        raise _bad()
    u = _fields(
        TLV(0xA3, top[0xA3][0], True),
        {0x80: 2, 0x81: 1, 0x82: 2, 0x83: 1, 0x84: 1},
        {0x80, 0x81, 0x82, 0x83, 0x84},
    )
    desc = Description(ap_type, pin, tuple(files), bytes(raw))
    target = desc.file(int.from_bytes(u[0x80][0], "big"))
    record, offset, length = u[0x81][0][0], int.from_bytes(u[0x82][0], "big"), u[0x83][0][0]
    if target is None or length == 0 or u[0x84][0][0] not in (1, 2):
        raise _bad()
    if (
        target.structure == BINARY
        and record != 0
        or target.structure == RECORDS
        and not 1 <= record <= target.count
    ):
        raise _bad()
    if offset + length > target.length:
        raise _bad()
    return desc


def check_standard_shape(desc: Description, ap_type: str) -> None:
    """The fixed shapes of types A, C and D (the card enforces them for the standard load files)."""
    if desc.ap_type != ap_type:
        raise _bad()
    for f in desc.files:
        if f.update_rule != 0x0F:
            raise _bad()
        if ap_type == "A" and (f.structure != RECORDS or f.read_rule != 0x02):
            raise _bad()
        if ap_type == "C" and f.read_rule != 0x00:
            raise _bad()
        if ap_type == "D" and (f.structure != BINARY or f.read_rule != 0x03):
            raise _bad()
    if (ap_type == "C") != (desc.pin is None):
        raise _bad()
