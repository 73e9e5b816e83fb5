"""Expanded remote command scripts (GP Amendment B / ETSI TS 102 226 §5.2.1): AA/22 and AB/80/23."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpcard.apdu import CommandAPDU, ResponseAPDU
from gpcard.script import (
    ScriptError,
    encode_command_script,
    encode_response_script,
    parse_command_script,
    parse_response_script,
)

h = bytes.fromhex


def test_command_script_layout() -> None:
    script = encode_command_script(
        [h("00A4040008A000000151000000"), CommandAPDU(0x80, 0xCA, 0x00, 0x45, le=256)]
    )
    assert script == h("AA16220D00A4040008A000000151000000220580CA004500")
    assert [c.hex() for c in parse_command_script(script)] == ["00A4040008A000000151000000", "80CA004500"]


def test_response_script_layout() -> None:
    script = encode_response_script([ResponseAPDU(b"", 0x9000), h("450A001122334455667788999000")])
    assert script == h("AB1780010223029000230E450A001122334455667788999000")
    parsed = parse_response_script(script)
    assert parsed.executed == 2 and parsed.responses[1].sw == 0x9000


def test_long_script_uses_long_lengths() -> None:
    cmds = [CommandAPDU(0x80, 0xE8, 0, i, bytes(200), le=256) for i in range(3)]
    script = encode_command_script(cmds)
    assert script[:2] == h("AA82")
    assert parse_command_script(script) == [c.with_() for c in cmds]


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("AB00", "start with 80"),
        ("AB03800101", "holds 0"),
        ("AB0A800102230290002301", "GET|value|needs"),
        ("AB0780010124029000", "not 23"),
        ("AB06800101230190", "2 bytes"),
        ("AB058003000001", "1 or 2 bytes"),
        ("AA00", "no C-APDU"),
        ("AA0422020000", "at least 4"),
        ("AA03210100", "not 22"),
        ("AB038001019000", "trailing"),
    ],
)
def test_malformed_scripts(hexdata: str, match: str) -> None:
    parser = parse_command_script if hexdata.startswith("AA") else parse_response_script
    with pytest.raises(ScriptError, match=match):
        parser(h(hexdata))


def test_encode_refusals() -> None:
    with pytest.raises(ScriptError):
        encode_command_script([])
    with pytest.raises(ScriptError):
        encode_command_script([b"\x00\xa4"])
    with pytest.raises(ScriptError):
        encode_response_script([b"\x90"])
    with pytest.raises(ScriptError):
        encode_response_script([b"\x90\x00"], executed=2)


apdus = st.builds(
    CommandAPDU,
    cla=st.integers(0, 255),
    ins=st.integers(0, 255),
    p1=st.integers(0, 255),
    p2=st.integers(0, 255),
    data=st.binary(max_size=300),
    le=st.none() | st.integers(1, 256),
)


@given(st.lists(apdus, min_size=1, max_size=6))
def test_command_round_trip(cmds: list[CommandAPDU]) -> None:
    assert [c.encode() for c in parse_command_script(encode_command_script(cmds))] == [
        c.encode() for c in cmds
    ]


@given(st.lists(st.binary(min_size=2, max_size=300), max_size=6))
def test_response_round_trip(raws: list[bytes]) -> None:
    parsed = parse_response_script(encode_response_script(raws))
    assert [r.encode() for r in parsed.responses] == raws


@given(st.binary(max_size=100))
def test_any_bytes_raise_only_scripterror(data: bytes) -> None:
    for parser in (parse_command_script, parse_response_script):
        with contextlib.suppress(ScriptError):
            parser(data)
