"""Card AP descriptions (docs/card-protocol.md "Card AP description") and custom load files.

A card AP is a small file system with access rules. Standard types A, C and D are fixed shapes of
the description; a custom AP ('X') is a description the provider writes. The same bytes go to the
card as INSTALL parameters (standard types) or as the load file data block (custom APs, signed by
the J-LIS DAP key).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from gpcard import tlv
from gpcard.aid import (
    AID,
    ISD_AID,
    STANDARD_ELF_AIDS,
    STANDARD_MODULE_AIDS,
    Area,
    custom_module_aid,
    instance_aid,
    load_file_aid,
)

__all__ = [  # instance/load file AID helpers re-exported: everything about loading an AP in one place
    "APType",
    "Area",
    "AccessRule",
    "CardAPDescription",
    "Charset",
    "DescriptionError",
    "FileLayout",
    "FileSpec",
    "FileStructure",
    "LoadFileError",
    "PinPolicy",
    "PinSource",
    "UserNumberLocation",
    "build_load_file",
    "custom_module_aid",
    "dap_sign",
    "dap_verify",
    "instance_aid",
    "load_blocks",
    "load_file_aid",
    "load_file_contents",
    "load_file_hash",
    "memory_cost",
    "parse_load_file",
    "standard_description",
    "standard_elf_aid",
    "standard_module_aid",
]

FORMAT_VERSION = 0x01
MAX_FILES = 16
RESERVED_FIDS = frozenset({0x3F00, 0x3FFF, 0xFFFF})
PIN_LENGTH_MIN, PIN_LENGTH_MAX = 4, 16
PIN_RETRY_MIN, PIN_RETRY_MAX = 1, 15
AP_BASE_COST = 64
FILE_BASE_COST = 32
# Largest LOAD block that still fits a short APDU under SCP03 level 33: padding to 16 (always at
# least one byte) + 8 MAC bytes must stay within 255.
MAX_LOAD_BLOCK_SCP03 = 239

TAG_DESCRIPTION = 0xA0
TAG_PIN_POLICY = 0xA1
TAG_FILE = 0xA2
TAG_USER_NUMBER = 0xA3


class DescriptionError(ValueError):
    """A card AP description that is malformed or breaks a rule; ``where`` names the field."""

    def __init__(self, message: str, where: str = "", offset: int | None = None) -> None:
        text = message
        if where:
            text = f"{where}: {text}"
        if offset is not None:
            text = f"{text} (at offset {offset})"
        super().__init__(text)
        self.reason = message
        self.where = where
        self.offset = offset


class LoadFileError(ValueError):
    """A load file (LOAD data) that is malformed, too large to send, or badly signed."""


class APType(enum.StrEnum):
    A = "A"
    C = "C"
    D = "D"
    CUSTOM = "X"

    @property
    def code(self) -> int:
        return ord(self.value)


class AccessRule(enum.IntEnum):
    FREE = 0x00
    PIN = 0x01
    PIN_MUTUAL_AUTH = 0x02
    PIN_MUTUAL_AUTH_SM = 0x03
    PERSONALISATION_ONLY = 0x0F
    NEVER = 0xFF

    @property
    def needs_pin(self) -> bool:
        return self in (AccessRule.PIN, AccessRule.PIN_MUTUAL_AUTH, AccessRule.PIN_MUTUAL_AUTH_SM)


class FileStructure(enum.IntEnum):
    TRANSPARENT = 0x01  # binary
    LINEAR_FIXED = 0x02  # records


class PinSource(enum.IntEnum):
    HOLDER = 0x01  # the holder chooses at the counter
    SYSTEM_FIXED = 0x02


class Charset(enum.IntEnum):
    DIGITS = 0x01
    ALPHANUMERIC = 0x02  # A-Z 0-9


def _enum(kind: type[enum.IntEnum], raw: int, where: str) -> int:
    try:
        return kind(raw)
    except ValueError:
        raise DescriptionError(f"{raw:02X} is not a valid {kind.__name__}", where) from None


@dataclass(frozen=True)
class PinPolicy:
    source: PinSource
    min_length: int
    max_length: int
    retry_limit: int

    def validate(self, where: str = "A1") -> None:
        _enum(PinSource, int(self.source), f"{where}/80")
        if not PIN_LENGTH_MIN <= self.min_length <= self.max_length <= PIN_LENGTH_MAX:
            raise DescriptionError(
                f"PIN lengths must satisfy {PIN_LENGTH_MIN} <= minimum <= maximum <= {PIN_LENGTH_MAX}, "
                f"got {self.min_length}..{self.max_length}",
                where,
            )
        if not PIN_RETRY_MIN <= self.retry_limit <= PIN_RETRY_MAX:
            raise DescriptionError(
                f"PIN retry limit must be {PIN_RETRY_MIN}..{PIN_RETRY_MAX}, got {self.retry_limit}",
                f"{where}/83",
            )

    def encode(self) -> bytes:
        return tlv.encode(
            TAG_PIN_POLICY,
            [
                tlv.encode(0x80, bytes([self.source])),
                tlv.encode(0x81, bytes([self.min_length])),
                tlv.encode(0x82, bytes([self.max_length])),
                tlv.encode(0x83, bytes([self.retry_limit])),
            ],
        )


@dataclass(frozen=True)
class FileSpec:
    """One elementary file: binary (``length`` bytes) or records (``record_count`` × ``record_length``)."""

    fid: int
    structure: FileStructure
    read_rule: AccessRule
    update_rule: AccessRule
    length: int = 0
    record_count: int = 0
    record_length: int = 0

    @property
    def size(self) -> int:
        """Bytes of content (binary length, or record count × record length)."""
        if self.structure == FileStructure.TRANSPARENT:
            return self.length
        return self.record_count * self.record_length

    def validate(self, where: str = "A2") -> None:
        if not 0 <= self.fid <= 0xFFFF:
            raise DescriptionError(f"FID {self.fid:#x} does not fit in 2 bytes", f"{where}/80")
        if self.fid in RESERVED_FIDS:
            raise DescriptionError(f"FID {self.fid:04X} is reserved (3F00, 3FFF, FFFF)", f"{where}/80")
        _enum(FileStructure, int(self.structure), f"{where}/81")
        _enum(AccessRule, int(self.read_rule), f"{where}/83")
        _enum(AccessRule, int(self.update_rule), f"{where}/84")
        if self.structure == FileStructure.TRANSPARENT:
            if not 1 <= self.length <= 0xFFFF:
                raise DescriptionError(
                    f"binary file length must be 1..65535, got {self.length}", f"{where}/82"
                )
            if self.record_count or self.record_length:
                raise DescriptionError("a binary file has no records", f"{where}/82")
        else:
            if not 1 <= self.record_count <= 0xFF or not 1 <= self.record_length <= 0xFF:
                raise DescriptionError(
                    f"record count and record length must be 1..255, got {self.record_count} × "
                    f"{self.record_length}",
                    f"{where}/82",
                )
            if self.length:
                raise DescriptionError("a record file has no binary length", f"{where}/82")

    def _size_bytes(self) -> bytes:
        if self.structure == FileStructure.TRANSPARENT:
            return self.length.to_bytes(2, "big")
        return bytes([self.record_count, self.record_length])

    def encode(self) -> bytes:
        return tlv.encode(
            TAG_FILE,
            [
                tlv.encode(0x80, self.fid.to_bytes(2, "big")),
                tlv.encode(0x81, bytes([self.structure])),
                tlv.encode(0x82, self._size_bytes()),
                tlv.encode(0x83, bytes([self.read_rule])),
                tlv.encode(0x84, bytes([self.update_rule])),
            ],
        )


@dataclass(frozen=True)
class FileLayout:
    """A file's shape without its access rules (the standard types fix the rules)."""

    fid: int
    structure: FileStructure
    length: int = 0
    record_count: int = 0
    record_length: int = 0

    @classmethod
    def binary(cls, fid: int, length: int) -> FileLayout:
        return cls(fid, FileStructure.TRANSPARENT, length=length)

    @classmethod
    def records(cls, fid: int, count: int, record_length: int) -> FileLayout:
        return cls(fid, FileStructure.LINEAR_FIXED, record_count=count, record_length=record_length)

    def spec(self, read_rule: AccessRule, update_rule: AccessRule) -> FileSpec:
        return FileSpec(
            self.fid,
            self.structure,
            read_rule,
            update_rule,
            self.length,
            self.record_count,
            self.record_length,
        )


@dataclass(frozen=True)
class UserNumberLocation:
    """Where the AP keeps its user number: a file, record (0 for binary), offset and length."""

    fid: int
    record: int
    offset: int
    length: int
    charset: Charset = Charset.DIGITS

    def encode(self) -> bytes:
        return tlv.encode(
            TAG_USER_NUMBER,
            [
                tlv.encode(0x80, self.fid.to_bytes(2, "big")),
                tlv.encode(0x81, bytes([self.record])),
                tlv.encode(0x82, self.offset.to_bytes(2, "big")),
                tlv.encode(0x83, bytes([self.length])),
                tlv.encode(0x84, bytes([self.charset])),
            ],
        )


# Standard type shapes (docs/card-protocol.md): allowed structures, read rule, update rule, PIN.
@dataclass(frozen=True)
class _Shape:
    structures: frozenset[FileStructure]
    read_rule: AccessRule
    update_rule: AccessRule
    pin: bool


STANDARD_SHAPES: dict[APType, _Shape] = {
    APType.A: _Shape(
        frozenset({FileStructure.LINEAR_FIXED}),
        AccessRule.PIN_MUTUAL_AUTH,
        AccessRule.PERSONALISATION_ONLY,
        True,
    ),
    APType.C: _Shape(
        frozenset({FileStructure.TRANSPARENT, FileStructure.LINEAR_FIXED}),
        AccessRule.FREE,
        AccessRule.PERSONALISATION_ONLY,
        False,
    ),
    APType.D: _Shape(
        frozenset({FileStructure.TRANSPARENT}),
        AccessRule.PIN_MUTUAL_AUTH_SM,
        AccessRule.PERSONALISATION_ONLY,
        True,
    ),
}


@dataclass(frozen=True)
class CardAPDescription:
    ap_type: APType
    files: tuple[FileSpec, ...]
    user_number: UserNumberLocation
    pin_policy: PinPolicy | None = None
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", tuple(self.files))

    @property
    def needs_pin(self) -> bool:
        return any(
            AccessRule(f.read_rule).needs_pin or AccessRule(f.update_rule).needs_pin for f in self.files
        )

    def file(self, fid: int) -> FileSpec | None:
        return next((f for f in self.files if f.fid == fid), None)

    def validate(self) -> None:
        """Raise DescriptionError at the first broken rule of docs/card-protocol.md."""
        try:
            ap_type = APType(self.ap_type)
        except ValueError:
            raise DescriptionError(f"unknown card AP type {self.ap_type!r}", "A0/80") from None
        if self.version != FORMAT_VERSION:
            raise DescriptionError(
                f"format version must be {FORMAT_VERSION:02X}, got {self.version:02X}", "A0/81"
            )
        if not 1 <= len(self.files) <= MAX_FILES:
            raise DescriptionError(f"a card AP has 1..{MAX_FILES} files, got {len(self.files)}", "A0/A2")
        seen: set[int] = set()
        for i, f in enumerate(self.files):
            where = f"A0/A2[{i}]"
            f.validate(where)
            if f.fid in seen:
                raise DescriptionError(f"FID {f.fid:04X} appears twice", f"{where}/80")
            seen.add(f.fid)
        if self.needs_pin and self.pin_policy is None:
            raise DescriptionError("a file needs a PIN but there is no PIN policy", "A0/A1")
        if not self.needs_pin and self.pin_policy is not None:
            raise DescriptionError("PIN policy present but no file needs a PIN", "A0/A1")
        if self.pin_policy is not None:
            self.pin_policy.validate("A0/A1")
        self._validate_user_number()
        shape = STANDARD_SHAPES.get(ap_type)
        if shape is not None:
            for i, f in enumerate(self.files):
                where = f"A0/A2[{i}]"
                if f.structure not in shape.structures:
                    raise DescriptionError(
                        f"type {ap_type.value} does not allow {f.structure.name.lower()} files", f"{where}/81"
                    )
                if f.read_rule != shape.read_rule:
                    raise DescriptionError(
                        f"type {ap_type.value} read rule is {shape.read_rule:02X}, got {f.read_rule:02X}",
                        f"{where}/83",
                    )
                if f.update_rule != shape.update_rule:
                    raise DescriptionError(
                        f"type {ap_type.value} update rule is {shape.update_rule:02X}, "
                        f"got {f.update_rule:02X}",
                        f"{where}/84",
                    )

    def _validate_user_number(self) -> None:
        un = self.user_number
        where = "A0/A3"
        target = self.file(un.fid)
        if target is None:
            raise DescriptionError(f"user number file {un.fid:04X} is not among the files", f"{where}/80")
        _enum(Charset, int(un.charset), f"{where}/84")
        if not 1 <= un.length <= 0xFF:
            raise DescriptionError(f"user number length must be 1..255, got {un.length}", f"{where}/83")
        if not 0 <= un.offset <= 0xFFFF:
            raise DescriptionError(f"offset {un.offset} does not fit in 2 bytes", f"{where}/82")
        if target.structure == FileStructure.TRANSPARENT:
            if un.record != 0:
                raise DescriptionError("record number must be 00 for a binary file", f"{where}/81")
            room = target.length
        else:
            if not 1 <= un.record <= target.record_count:
                raise DescriptionError(
                    f"record {un.record} outside 1..{target.record_count} of file {un.fid:04X}", f"{where}/81"
                )
            room = target.record_length
        if un.offset + un.length > room:
            raise DescriptionError(
                f"user number (offset {un.offset} + length {un.length}) does not fit in {room} bytes",
                f"{where}/82",
            )

    def encode(self) -> bytes:
        """The description TLV (``A0 …``), validated first."""
        self.validate()
        parts = [
            tlv.encode(0x80, bytes([APType(self.ap_type).code])),
            tlv.encode(0x81, bytes([self.version])),
        ]
        if self.pin_policy is not None:
            parts.append(self.pin_policy.encode())
        parts.extend(f.encode() for f in self.files)
        parts.append(self.user_number.encode())
        return tlv.encode(TAG_DESCRIPTION, parts)

    @classmethod
    def decode(cls, data: bytes) -> CardAPDescription:
        """Parse and validate; any fault raises DescriptionError naming the field and offset."""
        return _decode_description(bytes(data))


# --- decoding ---------------------------------------------------------------------------------


@dataclass
class _Fields:
    """The primitive children of one constructed TLV, by tag, each present at most once."""

    where: str
    parent: tlv.TLV
    items: dict[int, tlv.TLV] = field(default_factory=dict)

    def take(self, tag: int, size: int | None = None, *, sizes: tuple[int, ...] = ()) -> bytes:
        item = self.items.get(tag)
        if item is None:
            raise DescriptionError(f"missing tag {tag:02X}", self.where, self.parent.offset)
        allowed = sizes or ((size,) if size is not None else ())
        if allowed and len(item.value) not in allowed:
            raise DescriptionError(
                f"tag {tag:02X} must have {' or '.join(map(str, allowed))} bytes, has {len(item.value)}",
                f"{self.where}/{tag:02X}",
                item.offset,
            )
        return item.value


def _children(
    node: tlv.TLV, where: str, allowed: set[int], repeatable: frozenset[int] = frozenset()
) -> tuple[_Fields, list[tlv.TLV]]:
    try:
        kids = node.children()
    except tlv.TLVError as e:
        raise DescriptionError(e.reason, where, e.offset) from None
    fields = _Fields(where, node)
    repeated: list[tlv.TLV] = []
    for kid in kids:
        if kid.tag not in allowed:
            raise DescriptionError(f"unknown tag {kid.tag:02X}", where, kid.offset)
        if kid.tag in repeatable:
            repeated.append(kid)
            continue
        if kid.tag in fields.items:
            raise DescriptionError(f"tag {kid.tag:02X} appears twice", where, kid.offset)
        fields.items[kid.tag] = kid
    return fields, repeated


def _decode_description(data: bytes) -> CardAPDescription:
    try:
        root = tlv.decode_single(data, TAG_DESCRIPTION)
    except tlv.TLVError as e:
        raise DescriptionError(e.reason, "A0", e.offset) from None
    top, file_nodes = _children(
        root, "A0", {0x80, 0x81, TAG_PIN_POLICY, TAG_FILE, TAG_USER_NUMBER}, frozenset({TAG_FILE})
    )
    type_code = top.take(0x80, 1)[0]
    try:
        ap_type = APType(chr(type_code))
    except ValueError:
        raise DescriptionError(
            f"unknown card AP type {type_code:02X}", "A0/80", top.items[0x80].offset
        ) from None
    version = top.take(0x81, 1)[0]
    pin_policy: PinPolicy | None = None
    if TAG_PIN_POLICY in top.items:
        pp, _ = _children(top.items[TAG_PIN_POLICY], "A0/A1", {0x80, 0x81, 0x82, 0x83})
        pin_policy = PinPolicy(
            source=PinSource(_enum(PinSource, pp.take(0x80, 1)[0], "A0/A1/80")),
            min_length=pp.take(0x81, 1)[0],
            max_length=pp.take(0x82, 1)[0],
            retry_limit=pp.take(0x83, 1)[0],
        )
    files: list[FileSpec] = []
    for i, node in enumerate(file_nodes):
        where = f"A0/A2[{i}]"
        ff, _ = _children(node, where, {0x80, 0x81, 0x82, 0x83, 0x84})
        fid = int.from_bytes(ff.take(0x80, 2), "big")
        structure = FileStructure(_enum(FileStructure, ff.take(0x81, 1)[0], f"{where}/81"))
        size = ff.take(0x82, 2)
        read_rule = AccessRule(_enum(AccessRule, ff.take(0x83, 1)[0], f"{where}/83"))
        update_rule = AccessRule(_enum(AccessRule, ff.take(0x84, 1)[0], f"{where}/84"))
        if structure == FileStructure.TRANSPARENT:
            spec = FileSpec(fid, structure, read_rule, update_rule, length=int.from_bytes(size, "big"))
        else:
            spec = FileSpec(
                fid, structure, read_rule, update_rule, record_count=size[0], record_length=size[1]
            )
        files.append(spec)
    if TAG_USER_NUMBER not in top.items:
        raise DescriptionError("missing user number location (A3)", "A0", root.offset)
    un, _ = _children(top.items[TAG_USER_NUMBER], "A0/A3", {0x80, 0x81, 0x82, 0x83, 0x84})
    user_number = UserNumberLocation(
        fid=int.from_bytes(un.take(0x80, 2), "big"),
        record=un.take(0x81, 1)[0],
        offset=int.from_bytes(un.take(0x82, 2), "big"),
        length=un.take(0x83, 1)[0],
        charset=Charset(_enum(Charset, un.take(0x84, 1)[0], "A0/A3/84")),
    )
    desc = CardAPDescription(ap_type, tuple(files), user_number, pin_policy, version)
    desc.validate()
    return desc


# --- builders ---------------------------------------------------------------------------------


def standard_description(
    ap_type: APType | str,
    layout: Sequence[FileLayout],
    *,
    user_number: UserNumberLocation,
    pin_policy: PinPolicy | None = None,
) -> CardAPDescription:
    """A type A, C or D description with the given file layout; the type fixes the access rules."""
    try:
        kind = APType(ap_type)
    except ValueError:
        raise DescriptionError(f"unknown card AP type {ap_type!r}", "A0/80") from None
    shape = STANDARD_SHAPES.get(kind)
    if shape is None:
        raise DescriptionError(
            "a custom AP ('X') has no standard shape; build CardAPDescription directly", "A0/80"
        )
    desc = CardAPDescription(
        kind,
        tuple(f.spec(shape.read_rule, shape.update_rule) for f in layout),
        user_number,
        pin_policy,
    )
    desc.validate()
    return desc


def standard_elf_aid(ap_type: APType | str) -> AID:
    return STANDARD_ELF_AIDS[APType(ap_type).value]


def standard_module_aid(ap_type: APType | str) -> AID:
    return STANDARD_MODULE_AIDS[APType(ap_type).value]


def memory_cost(desc: CardAPDescription) -> int:
    """Bytes an AP instance takes from its area's quota: 64 + Σ(32 + file size)."""
    return AP_BASE_COST + sum(FILE_BASE_COST + f.size for f in desc.files)


# --- custom load files ------------------------------------------------------------------------


def build_load_file(desc: CardAPDescription) -> bytes:
    """The load file data block of a custom AP: its description TLV (validated).

    Its quota cost on the card is its length."""
    if APType(desc.ap_type) != APType.CUSTOM:
        raise DescriptionError("only a custom AP ('X') has a load file; types A/C/D are pre-loaded", "A0/80")
    return desc.encode()


def load_file_hash(data_block: bytes) -> bytes:
    """SHA-256 of the load file data block (the hash field of INSTALL [for load])."""
    return hashlib.sha256(data_block).digest()


def dap_sign(data_block: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """DAP signature: ECDSA P-256 / SHA-256 over the load file data block, raw r ‖ s (64 bytes)."""
    if not isinstance(private_key.curve, ec.SECP256R1):
        raise LoadFileError(f"the DAP key must be on P-256, not {private_key.curve.name}")
    der = private_key.sign(data_block, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def dap_verify(data_block: bytes, signature: bytes, public_key: ec.EllipticCurvePublicKey) -> bool:
    """True if ``signature`` (raw r ‖ s) is a valid DAP signature of ``data_block``."""
    if len(signature) != 64 or not isinstance(public_key.curve, ec.SECP256R1):
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if r <= 0 or s <= 0:
        return False
    try:
        public_key.verify(encode_dss_signature(r, s), data_block, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def load_file_contents(data_block: bytes, signature: bytes, dap_sd_aid: AID = ISD_AID) -> bytes:
    """The concatenated LOAD data: E2 { 4F DAP SD AID, C3 signature } ‖ C4 <load file data block>."""
    if len(signature) != 64:
        raise LoadFileError(f"a DAP signature has 64 bytes (r ‖ s), got {len(signature)}")
    dap_block = tlv.encode(0xE2, [tlv.encode(0x4F, bytes(dap_sd_aid)), tlv.encode(0xC3, signature)])
    return dap_block + tlv.encode(0xC4, data_block)


def load_blocks(
    dap_sd_aid: AID,
    data_block: bytes,
    signature: bytes,
    block_size: int = MAX_LOAD_BLOCK_SCP03,
) -> list[bytes]:
    """The data fields of the LOAD commands, in order (block i goes with P2 = i, P1 80 on the last)."""
    if not 1 <= block_size <= 0xFFFF:
        raise LoadFileError(f"block size must be 1..65535, got {block_size}")
    contents = load_file_contents(data_block, signature, dap_sd_aid)
    blocks = [contents[i : i + block_size] for i in range(0, len(contents), block_size)]
    if len(blocks) > 256:
        raise LoadFileError(f"{len(blocks)} LOAD blocks exceed the 256 that P2 can number")
    return blocks


def parse_load_file(contents: bytes) -> tuple[AID, bytes, bytes]:
    """Split concatenated LOAD data into (DAP SD AID, signature, load file data block)."""
    try:
        items = tlv.decode(contents)
    except tlv.TLVError as e:
        raise LoadFileError(str(e)) from None
    if [t.tag for t in items] != [0xE2, 0xC4]:
        raise LoadFileError("a load file is E2 { 4F, C3 } followed by C4")
    try:
        dap = items[0].children()
    except tlv.TLVError as e:
        raise LoadFileError(str(e)) from None
    if [t.tag for t in dap] != [0x4F, 0xC3]:
        raise LoadFileError("the DAP block is E2 { 4F SD AID, C3 signature }")
    try:
        sd = AID(dap[0].value)
    except ValueError as e:
        raise LoadFileError(str(e)) from None
    if len(dap[1].value) != 64:
        raise LoadFileError(f"a DAP signature has 64 bytes, got {len(dap[1].value)}")
    return sd, dap[1].value, items[1].value
