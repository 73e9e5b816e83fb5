"""GlobalPlatform command layouts (GPC 2.3 §11 tables, as fixed by docs/card-protocol.md) and strict
response parsing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gpcard import gp
from gpcard.aid import AID, ISD_AID, LOCAL_AREA_SD_AID, instance_aid, load_file_aid
from gpcard.scp03 import aes_kcv

h = bytes.fromhex


def test_select_and_get_data() -> None:
    assert gp.select(ISD_AID).hex() == "00A4040008A00000015100000000"
    assert gp.get_data(gp.TAG_CIN).hex() == "80CA004500"
    assert gp.get_data(gp.TAG_RESOURCES).hex() == "80CAFF2100"
    with pytest.raises(gp.GPError):
        gp.select(b"\x01\x02")


def test_identity_parsers() -> None:
    assert gp.parse_iin(h("42051122334455")) == h("1122334455")
    assert gp.parse_cin(h("450A00112233445566778899")) == h("00112233445566778899")
    with pytest.raises(gp.GPError, match="10"):
        gp.parse_cin(h("4502AABB"))
    with pytest.raises(gp.GPError, match="expected tag 45"):
        gp.parse_cin(h("420A00112233445566778899"))
    with pytest.raises(gp.GPError):
        gp.parse_iin(h("4205112233"))


def test_card_data() -> None:
    # GPC 2.3 §H.2 card recognition data shape: 66 { 73 { 06 OID, 60 { 06 OID }, 64 { 06 OID } } }
    data = h("661C731A06072A864886FC6B01600B06092A864886FC6B02020364020600")
    parsed = gp.parse_card_data(data)
    assert parsed[0x06] == h("2A864886FC6B01") and parsed[0x60] == h("2A864886FC6B020203")
    with pytest.raises(gp.GPError):
        gp.parse_card_data(h("66035A0100"))


def test_key_information() -> None:
    keys = gp.parse_key_information(h("E012C00401308810C00402308810C00403308810"))
    assert [(k.key_id, k.version, k.key_type, k.key_length) for k in keys] == [
        (i, 0x30, 0x88, 16) for i in (1, 2, 3)
    ]
    with pytest.raises(gp.GPError):
        gp.parse_key_information(h("E003C00101"))


def test_resources() -> None:
    r = gp.parse_resources(h("FF211681020003820400001C00830400000400840400002000"))
    assert (r.applications, r.free_nonvolatile, r.free_volatile, r.quota, r.used) == (
        3,
        7168,
        1024,
        8192,
        1024,
    )
    with pytest.raises(gp.GPError, match="missing tag 84"):
        gp.parse_resources(h("FF211081020003820400001C00830400000400"))
    with pytest.raises(gp.GPError, match="2"):
        gp.parse_resources(h("FF2115810103820400001C00830400000400840400002000"))


def test_get_status_commands() -> None:
    assert gp.get_status(gp.StatusKind.APPLICATIONS).hex() == "80F24002024F0000"
    assert gp.get_status(gp.StatusKind.LOAD_FILES, next_part=True).hex() == "80F22003024F0000"


def test_parse_get_status() -> None:
    data = h("E31D4F08D392F101000000079F700107C503000000CC08D392100031000201") + h(
        "E3134F08D3921000310002019F70010FC503800000"
    )
    a, sd = gp.parse_get_status(data)
    assert a.aid == instance_aid(1, 7) and a.life_cycle == gp.ApplicationLifeCycle.SELECTABLE
    assert a.associated_sd == LOCAL_AREA_SD_AID and not a.is_security_domain and not a.locked
    assert sd.is_security_domain and sd.associated_sd is None
    assert gp.parse_get_status(b"") == []
    lf = gp.parse_get_status(h("E3194F08D392F202000000019F7001018409D392F2020000000101"))[0]
    assert lf.modules == (AID(h("D392F2020000000101")),)


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("E1024F00", "expected E3"),
        ("E3049F700107", "lacks AID"),
        ("E30C4F05A0000001519F70020101", "one byte"),
        ("E30B4F05A0000001519F7001079F", "GET STATUS"),
        ("E30D4F03A000009F700107", "GET STATUS"),
        ("E3124F05A0000001514F05A0000001519F700107", "twice"),
        ("E30D4F05A0000001519F700107C502", "GET STATUS"),
    ],
)
def test_get_status_errors(hexdata: str, match: str) -> None:
    with pytest.raises(gp.GPError, match=match):
        gp.parse_get_status(h(hexdata))


@given(st.binary(max_size=80))
def test_parsers_raise_only_gperror(data: bytes) -> None:
    for parser in (
        gp.parse_get_status,
        gp.parse_resources,
        gp.parse_key_information,
        gp.parse_card_data,
        gp.parse_iin,
        gp.parse_cin,
        gp.parse_dgis,
    ):
        with contextlib.suppress(gp.GPError):
            parser(data)


def test_install_for_load_layout() -> None:
    lf = load_file_aid(2, 1)
    cmd = gp.install_for_load(
        lf, h("D392100031000202"), data_block_hash=bytes(32), parameters=gp.load_parameters(300)
    )
    assert cmd.hex().startswith("80E60200")
    assert cmd.data == (
        h("08D392F20200000001")
        + h("08D392100031000202")
        + b"\x20"
        + bytes(32)
        + h("06EF04C602012C")
        + b"\x00"
    )
    assert gp.load_parameters(0x12345).hex().upper() == "EF05C603012345"


def test_install_for_install_layout() -> None:
    desc = h("A003800141")  # any TLV: INSTALL only carries it
    cmd = gp.install_for_install(
        h("D39210003100030A"),
        h("D39210003100030A01"),
        instance_aid(1, 9),
        parameters=gp.install_parameters(desc),
    )
    assert cmd.hex().startswith("80E60C00")
    assert cmd.data == (
        h("08D39210003100030A")
        + h("09D39210003100030A01")
        + h("08D392F10100000009")
        + h("0100")
        + h("07C905A003800141")
        + h("00")
    )
    custom = gp.install_for_install(load_file_aid(1, 9), load_file_aid(1, 9) + b"\x01", instance_aid(1, 9))
    assert custom.data.endswith(h("010002C90000"))
    assert (
        gp.install_for_install(
            h("D39210003100030A"), h("D39210003100030A01"), instance_aid(1, 9), make_selectable=False
        ).p1
        == 0x04
    )
    with pytest.raises(gp.GPError):
        gp.install_for_install(
            h("D39210003100030A"), h("D39210003100030A01"), instance_aid(1, 9), privileges=b""
        )


def test_long_install_parameters_use_ber_lengths() -> None:
    big = gp.install_parameters(bytes(300))  # C9 82 01 2C ...
    cmd = gp.install_for_install(
        h("D39210003100030A"), h("D39210003100030A01"), instance_aid(1, 9), parameters=big
    )
    i = 9 + 10 + 9 + 2
    assert cmd.data[i : i + 3] == h("820130") and cmd.is_extended


def test_install_for_personalization_layout() -> None:
    assert (
        gp.install_for_personalization(instance_aid(2, 3)).hex()
        == "80E620000E000008D392F10200000003000000" + "00"
    )


def test_load_and_delete() -> None:
    cmds = gp.load_commands([b"a", b"b", b"c"])
    assert [(c.p1, c.p2) for c in cmds] == [(0x00, 0), (0x00, 1), (0x80, 2)]
    assert gp.delete(instance_aid(1, 1)).hex() == "80E400000A4F08D392F1010000000100"
    assert gp.delete(load_file_aid(1, 1), related=True).hex() == "80E400800A4F08D392F2010000000100"
    with pytest.raises(gp.GPError):
        gp.load_commands([])
    with pytest.raises(gp.GPError):
        gp.load_commands([b"x"] * 257)


def test_set_status() -> None:
    assert gp.set_status(0x40, 0x83, instance_aid(1, 1)).hex() == "80F0408308D392F10100000001"
    assert gp.set_status(0x80, 0x7F).hex() == "80F0807F"
    with pytest.raises(gp.GPError):
        gp.set_status(0x40, 0x83)
    with pytest.raises(gp.GPError):
        gp.set_status(0x20, 0x83, instance_aid(1, 1))


def test_dgis() -> None:
    assert gp.dgi_file_content(0x0001, 0x02, 0x0010, b"AB").hex().upper() == "0101070001020010" + "4142"
    assert gp.dgi_pin("1234").hex() == "03010431323334"
    assert gp.dgi_ap_key(bytes(16)).hex() == "020111" + "01" + "00" * 16
    assert gp.dgi(0x0101, bytes(300))[:5] == h("0101FF012C")
    assert gp.parse_dgis(gp.dgi(0x0101, bytes(300)) + gp.dgi_pin("0000")) == [
        (0x0101, bytes(300)),
        (0x0301, b"0000"),
    ]
    for bad in ("12a4", "１２３４", ""):
        with pytest.raises(gp.GPError):
            gp.dgi_pin(bad)
    with pytest.raises(gp.GPError):
        gp.dgi_ap_key(bytes(15))
    with pytest.raises(gp.GPError, match="needs"):
        gp.parse_dgis(h("0101050001"))


def test_file_content_is_split_into_whole_dgis() -> None:
    content = bytes(range(256)) * 3
    dgis = gp.file_content_dgis(0x0002, 0, content)
    assert all(len(d) <= gp.MAX_SECURE_DATA for d in dgis)
    rebuilt = b""
    for tag, value in (gp.parse_dgis(d)[0] for d in dgis):
        assert tag == 0x0101 and value[:2] == h("0002") and int.from_bytes(value[3:5], "big") == len(rebuilt)
        rebuilt += value[5:]
    assert rebuilt == content


def test_store_data_blocks() -> None:
    dgis = gp.file_content_dgis(0x0001, 0, bytes(500)) + [gp.dgi_pin("123456"), gp.dgi_ap_key(bytes(16))]
    cmds = gp.store_data_commands(dgis)
    assert [c.p2 for c in cmds] == list(range(len(cmds)))
    assert [c.p1 for c in cmds] == [0x08] * (len(cmds) - 1) + [0x88]  # GPC 2.3 Table 11-89
    assert b"".join(c.data for c in cmds) == b"".join(dgis)
    assert all(len(c.data) <= gp.MAX_SECURE_DATA for c in cmds)
    for c in cmds:  # each block holds whole DGIs
        gp.parse_dgis(c.data)
    with pytest.raises(gp.GPError, match="exceeds"):
        gp.store_data_commands([gp.dgi(0x0101, bytes(300))])
    with pytest.raises(gp.GPError):
        gp.store_data_commands([])


def test_put_key() -> None:
    keys = [bytes(range(16)), bytes(range(16, 32)), bytes(range(32, 48))]
    cmd = gp.put_key(0x31, keys, lambda k: bytes(b ^ 0xFF for b in k), old_version=0x30)
    assert (cmd.cla, cmd.ins, cmd.p1, cmd.p2) == (0x80, 0xD8, 0x30, 0x81)
    assert cmd.data[0] == 0x31
    block = cmd.data[1 : 1 + 2 + 17 + 4]
    assert block[:3] == h("881110") and block[3:19] == bytes(b ^ 0xFF for b in keys[0])
    assert block[19:] == b"\x03" + aes_kcv(keys[0])
    gp.parse_put_key_response(b"\x31" + b"".join(aes_kcv(k) for k in keys), 0x31, keys)
    with pytest.raises(gp.GPError):
        gp.parse_put_key_response(b"\x31" + bytes(9), 0x31, keys)
    with pytest.raises(gp.GPError):
        gp.put_key(0x80, keys, lambda k: k)
