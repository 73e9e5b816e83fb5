"""BER-TLV (ISO/IEC 7816-4 §5.2, the subset of ITU-T X.690 that smart cards use).

Tags are plain ints of their encoded bytes (``0x9F70`` is the two bytes 9F 70), lengths are
definite (short form or 81..84 long form). Decoding is strict: any malformation raises
:class:`TLVError` naming the byte offset where it was found. No library on PyPI does BER-TLV
with offsets and strictness in a typed way, hence this small hand-written module.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "TLV",
    "TLVError",
    "decode",
    "decode_one",
    "decode_single",
    "encode",
    "encode_length",
    "encode_tag",
    "find",
    "find_all",
    "tag_is_constructed",
]

MAX_LENGTH_BYTES = 4  # 84 xx xx xx xx: more is never needed on a card and is refused


class TLVError(ValueError):
    """Malformed BER-TLV. ``offset`` is the byte position (in the outermost buffer) of the fault."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} (at offset {offset})")
        self.reason = message
        self.offset = offset


def tag_bytes_valid(raw: bytes) -> bool:
    """True if ``raw`` is exactly one well-formed tag (first byte, then continuation bytes)."""
    if not raw or raw[0] == 0x00:
        return False
    if raw[0] & 0x1F != 0x1F:
        return len(raw) == 1
    if len(raw) < 2 or len(raw) > 4:
        return False
    if raw[1] == 0x80:  # leading zero bits in the tag number are not allowed
        return False
    return all(b & 0x80 for b in raw[1:-1]) and not raw[-1] & 0x80


def encode_tag(tag: int) -> bytes:
    """The bytes of ``tag`` (an int such as 0x9F70); raises ValueError if it is not a valid tag."""
    if tag <= 0:
        raise ValueError(f"invalid tag {tag:#x}")
    raw = tag.to_bytes((tag.bit_length() + 7) // 8, "big")
    if not tag_bytes_valid(raw):
        raise ValueError(f"invalid tag {tag:#x}")
    return raw


def tag_is_constructed(tag: int) -> bool:
    """Bit 6 of the first tag byte: the value is itself a sequence of TLVs."""
    first = encode_tag(tag)[0]
    return bool(first & 0x20)


def encode_length(length: int) -> bytes:
    """Definite length, minimal encoding (short form below 128, else 81/82/83/84 + bytes)."""
    if length < 0:
        raise ValueError("negative length")
    if length < 0x80:
        return bytes([length])
    n = (length.bit_length() + 7) // 8
    if n > MAX_LENGTH_BYTES:
        raise ValueError(f"length {length} too large for BER-TLV")
    return bytes([0x80 | n]) + length.to_bytes(n, "big")


def encode(tag: int, value: bytes | Iterable[bytes] = b"") -> bytes:
    """One TLV. ``value`` is the value bytes, or an iterable of already-encoded children."""
    body = bytes(value) if isinstance(value, bytes | bytearray | memoryview) else b"".join(value)
    return encode_tag(tag) + encode_length(len(body)) + body


@dataclass(frozen=True)
class TLV:
    """One decoded data object: ``offset`` is where its tag starts in the decoded buffer."""

    tag: int
    value: bytes
    offset: int = 0
    value_offset: int = 0

    @property
    def constructed(self) -> bool:
        return tag_is_constructed(self.tag)

    def children(self) -> list[TLV]:
        """The TLVs inside a constructed object (offsets stay relative to the outer buffer)."""
        if not self.constructed:
            raise TLVError(f"tag {self.tag:X} is primitive, it has no children", self.offset)
        return decode(self.value, base_offset=self.value_offset)

    def encode(self) -> bytes:
        return encode(self.tag, self.value)

    def __bytes__(self) -> bytes:
        return self.encode()


def decode_one(data: bytes, offset: int = 0, *, base_offset: int = 0) -> tuple[TLV, int]:
    """Decode the TLV starting at ``offset``; returns it and the offset just after it."""
    end = len(data)
    start = offset
    where = base_offset + offset
    if offset >= end:
        raise TLVError("missing tag", where)
    first = data[offset]
    if first == 0x00:  # ISO 7816-4 padding byte; FF is allowed as it starts GlobalPlatform's FF21
        raise TLVError(f"invalid tag byte {first:02X}", where)
    offset += 1
    if first & 0x1F == 0x1F:
        n = 1
        while True:
            if offset >= end:
                raise TLVError("tag truncated", base_offset + offset)
            b = data[offset]
            if n == 1 and b == 0x80:
                raise TLVError("tag number has leading zero bits", base_offset + offset)
            offset += 1
            n += 1
            if not b & 0x80:
                break
            if n >= 4:
                raise TLVError("tag longer than 4 bytes", base_offset + offset)
    tag = int.from_bytes(data[start:offset], "big")
    if offset >= end:
        raise TLVError(f"length of tag {tag:X} missing", base_offset + offset)
    length_at = offset
    lb = data[offset]
    offset += 1
    if lb < 0x80:
        length = lb
    elif lb == 0x80:
        raise TLVError("indefinite length is not allowed", base_offset + length_at)
    else:
        n = lb & 0x7F
        if n > MAX_LENGTH_BYTES:
            raise TLVError(f"length field of {n} bytes is too long", base_offset + length_at)
        if offset + n > end:
            raise TLVError(f"length of tag {tag:X} truncated", base_offset + length_at)
        length = int.from_bytes(data[offset : offset + n], "big")
        offset += n
    if offset + length > end:
        raise TLVError(
            f"value of tag {tag:X} needs {length} bytes, only {end - offset} left", base_offset + length_at
        )
    value = bytes(data[offset : offset + length])
    return TLV(tag, value, base_offset + start, base_offset + offset), offset + length


def iter_decode(data: bytes, *, base_offset: int = 0) -> Iterator[TLV]:
    offset = 0
    while offset < len(data):
        tlv, offset = decode_one(data, offset, base_offset=base_offset)
        yield tlv


def decode(data: bytes, *, base_offset: int = 0) -> list[TLV]:
    """All TLVs of ``data`` in order (no padding bytes allowed between them)."""
    return list(iter_decode(bytes(data), base_offset=base_offset))


def find_all(tlvs: Sequence[TLV], tag: int) -> list[TLV]:
    return [t for t in tlvs if t.tag == tag]


def find(tlvs: Sequence[TLV], tag: int) -> TLV | None:
    """The first TLV with ``tag`` or None."""
    for t in tlvs:
        if t.tag == tag:
            return t
    return None


def decode_single(data: bytes, tag: int | None = None) -> TLV:
    """Exactly one TLV filling ``data`` (optionally with the given tag), else TLVError."""
    tlv, end = decode_one(data)
    if end != len(data):
        raise TLVError(f"{len(data) - end} trailing bytes after tag {tlv.tag:X}", end)
    if tag is not None and tlv.tag != tag:
        raise TLVError(f"expected tag {tag:X}, found {tlv.tag:X}", 0)
    return tlv
