"""BER-TLV: known encodings from ISO/IEC 7816-4 / GlobalPlatform examples, strict errors, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpcard import tlv


def test_known_encodings() -> None:
    # GET STATUS entry shape from GPC 2.3 §11.4.3.1: E3 { 4F AID, 9F70 life cycle, C5 privileges }
    entry = tlv.encode(
        0xE3,
        [
            tlv.encode(0x4F, bytes.fromhex("A000000151000000")),
            tlv.encode(0x9F70, b"\x0f"),
            tlv.encode(0xC5, b"\x9e\x00\x00"),
        ],
    )
    assert entry.hex().upper() == "E3134F08A0000001510000009F70010FC5039E0000"
    assert tlv.encode_length(0x7F) == b"\x7f"
    assert tlv.encode_length(0x80) == b"\x81\x80"
    assert tlv.encode_length(0x100) == b"\x82\x01\x00"
    assert tlv.encode_length(0x10000) == b"\x83\x01\x00\x00"
    assert tlv.encode_tag(0x5F2D) == b"\x5f\x2d"
    assert tlv.encode_tag(0xBF0C) == b"\xbf\x0c"
    assert tlv.encode_tag(0xFF21) == b"\xff\x21"  # GlobalPlatform extended card resources


def test_decode_constructed_keeps_outer_offsets() -> None:
    data = bytes.fromhex("E3134F08A0000001510000009F70010FC5039E0000")
    (e3,) = tlv.decode(data)
    assert e3.constructed
    kids = e3.children()
    assert [k.tag for k in kids] == [0x4F, 0x9F70, 0xC5]
    assert kids[1].offset == 12 and kids[1].value == b"\x0f"
    assert tlv.find(kids, 0xC5) is not None and tlv.find(kids, 0xCC) is None


def test_long_length_value() -> None:
    value = bytes(range(256)) * 2
    enc = tlv.encode(0xC4, value)
    assert enc[:4] == b"\xc4\x82\x02\x00"
    assert tlv.decode_single(enc, 0xC4).value == value


@pytest.mark.parametrize(
    ("hexdata", "offset", "reason"),
    [
        ("4F05A000", 1, "needs 5 bytes"),
        ("4F", 1, "length of tag 4F missing"),
        ("4F80", 1, "indefinite"),
        ("4F85000000000001", 1, "too long"),
        ("4F8200", 1, "truncated"),
        ("9F", 1, "tag truncated"),
        ("9F8001", 1, "leading zero"),
        ("9FFFFFFF01", 4, "longer than 4"),
        ("00", 0, "invalid tag byte 00"),
        ("4F0000", 2, "invalid tag byte 00"),
        ("4F00FF", 3, "tag truncated"),
    ],
)
def test_malformed_raise_with_offset(hexdata: str, offset: int, reason: str) -> None:
    with pytest.raises(tlv.TLVError) as err:
        tlv.decode(bytes.fromhex(hexdata))
    assert err.value.offset == offset
    assert reason in str(err.value)


def test_decode_single_rejects_trailing_and_wrong_tag() -> None:
    with pytest.raises(tlv.TLVError, match="trailing"):
        tlv.decode_single(bytes.fromhex("4F004F00"))
    with pytest.raises(tlv.TLVError, match="expected tag A0"):
        tlv.decode_single(bytes.fromhex("4F00"), 0xA0)


def test_primitive_has_no_children() -> None:
    with pytest.raises(tlv.TLVError):
        tlv.decode_single(bytes.fromhex("4F00")).children()


@pytest.mark.parametrize("bad", [0, -1, 0x1F, 0x9F80, 0x9F8001, 0xFF, 0x4F4F])
def test_invalid_tags_refused_on_encode(bad: int) -> None:
    with pytest.raises(ValueError):
        tlv.encode_tag(bad)


tags = st.one_of(
    st.integers(0x01, 0x1E).map(lambda n: n | 0x40),
    st.sampled_from([0x4F, 0x80, 0x9F70, 0x5F2D, 0xBF0C, 0xC5, 0xE3, 0xDF8101]),
)


@given(st.lists(st.tuples(tags, st.binary(max_size=300)), max_size=5))
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    data = b"".join(tlv.encode(t, v) for t, v in items)
    decoded = tlv.decode(data)
    assert [(d.tag, d.value) for d in decoded] == items
    assert b"".join(d.encode() for d in decoded) == data


@given(st.binary(max_size=64))
def test_any_bytes_raise_only_tlverror(data: bytes) -> None:
    try:
        for item in tlv.decode(data):
            if item.constructed:
                item.children()
    except tlv.TLVError as e:
        assert 0 <= e.offset <= len(data)
