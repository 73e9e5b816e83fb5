"""APDU encodings per ISO/IEC 7816-3 §12.1.3 / 7816-4 §5.1 (the seven length layouts), strict parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpcard.apdu import APDUError, CommandAPDU, ResponseAPDU
from gpcard.sw import CardError

CASES = [
    # hex, case, data length, Le, extended
    ("00A40400", 1, 0, None, False),
    ("00B0000000", 2, 0, 256, False),
    ("00B0000010", 2, 0, 16, False),
    ("00A4040008A000000151000000", 3, 8, None, False),
    ("00A4040008A00000015100000000", 4, 8, 256, False),
    ("00B00000000000", 2, 0, 65536, True),
    ("00B00000000100", 2, 0, 256, True),
    ("00D60000000003010203", 3, 3, None, True),
    ("00D600000000030102030000", 4, 3, 65536, True),
]


@pytest.mark.parametrize(("hexdata", "case", "lc", "le", "extended"), CASES)
def test_seven_layouts(hexdata: str, case: int, lc: int, le: int | None, extended: bool) -> None:
    apdu = CommandAPDU.from_hex(hexdata)
    assert (apdu.case, len(apdu.data), apdu.le, apdu.is_extended) == (case, lc, le, extended)
    assert apdu.hex() == hexdata.upper()


def test_long_data_goes_extended() -> None:
    apdu = CommandAPDU(0x80, 0xE2, 0x00, 0x00, bytes(300), le=256)
    raw = apdu.encode()
    assert raw[4:7] == b"\x00\x01\x2c" and raw[-2:] == b"\x01\x00" and len(raw) == 4 + 3 + 300 + 2
    assert CommandAPDU.parse(raw).data == bytes(300)


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("00A404", "at least 4"),
        ("00A4040008A0000001", "does not match"),
        ("00A4040002A0000001", "does not match"),
        ("00B0000000", None),
        ("00B000000000", "truncated"),
        ("00D600000000", "truncated"),
        ("00D60000000003010203000000", "does not match"),
        ("00D600000000000102", "extended Lc of 0"),
    ],
)
def test_malformed(hexdata: str, match: str | None) -> None:
    if match is None:
        CommandAPDU.from_hex(hexdata)
        return
    with pytest.raises(APDUError, match=match):
        CommandAPDU.from_hex(hexdata)


@pytest.mark.parametrize(
    "kwargs", [{"cla": 256}, {"p1": -1}, {"le": 0}, {"le": 65537}, {"data": bytes(65536)}]
)
def test_constructor_refuses(kwargs: dict[str, object]) -> None:
    base: dict[str, object] = {"cla": 0, "ins": 0xA4, "p1": 0, "p2": 0}
    base.update(kwargs)
    with pytest.raises(APDUError):
        CommandAPDU(**base)  # type: ignore[arg-type]


def test_not_hex() -> None:
    with pytest.raises(APDUError, match="not hex"):
        CommandAPDU.from_hex("zz")


commands = st.builds(
    CommandAPDU,
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=400),
    le=st.none() | st.integers(1, 65536),
    extended=st.booleans(),
)


@given(commands)
def test_round_trip(apdu: CommandAPDU) -> None:
    raw = apdu.encode()
    back = CommandAPDU.parse(raw)
    assert (back.cla, back.ins, back.p1, back.p2, back.data, back.case) == (
        apdu.cla,
        apdu.ins,
        apdu.p1,
        apdu.p2,
        apdu.data,
        apdu.case,
    )
    if apdu.le is not None:
        # Le 256 short / 65536 extended are the "maximum" encodings 00 / 0000
        assert back.le == apdu.le or (apdu.le in (256, 65536) and back.le in (256, 65536))
    assert back.encode() == raw


@given(st.binary(max_size=300))
def test_parse_any_bytes_only_apduerror(raw: bytes) -> None:
    try:
        apdu = CommandAPDU.parse(raw)
    except APDUError:
        return
    assert apdu.encode() == raw


def test_response() -> None:
    r = ResponseAPDU.parse(bytes.fromhex("0102039000"))
    assert r.data == b"\x01\x02\x03" and r.sw == 0x9000 and (r.sw1, r.sw2) == (0x90, 0)
    assert r.check() is r
    with pytest.raises(CardError) as err:
        ResponseAPDU.parse(bytes.fromhex("6A84")).check(command="INSTALL")
    assert err.value.sw == 0x6A84 and "INSTALL" in str(err.value)
    with pytest.raises(APDUError):
        ResponseAPDU.parse(b"\x90")
    assert ResponseAPDU.parse(bytes.fromhex("6310")).check(0x9000, 0x6310).sw == 0x6310
