"""AIDs (ISO/IEC 7816-5: 5-byte RID + 0..11-byte PIX) and the well-known AIDs of docs/card-protocol.md."""

from __future__ import annotations

import pytest

from gpcard import aid


def test_parse_and_parts() -> None:
    a = aid.AID.from_hex("a0 00 00 01 51 00 00 00")
    assert a == aid.ISD_AID and a.hex() == "A000000151000000" and str(a) == a.hex()
    assert a.rid == bytes.fromhex("A000000151") and a.pix == bytes.fromhex("000000") and len(a) == 8
    assert aid.AID.from_hex("D3:92:F0:00:26:01:00:00:00:01") == aid.JPKI_AP_AID


@pytest.mark.parametrize(
    ("text", "match"),
    [("A0000001", "5 to 16"), ("A0" * 17, "5 to 16"), ("A00000015G", "non-hex"), ("A00000015", "odd")],
)
def test_bad_text(text: str, match: str) -> None:
    with pytest.raises(aid.AIDError, match=match):
        aid.AID.from_hex(text)


def test_well_known_aids_match_the_doc() -> None:
    assert aid.LOCAL_AREA_SD_AID.hex() == "D392100031000201"
    assert aid.EXTENDED_AREA_SD_AID.hex() == "D392100031000202"
    assert aid.Area.EXTENDED.sd_aid == aid.EXTENDED_AREA_SD_AID
    assert [a.hex() for a in aid.STANDARD_ELF_AIDS.values()] == [
        "D39210003100030A",
        "D39210003100030C",
        "D39210003100030D",
    ]
    assert aid.STANDARD_MODULE_AIDS["A"].hex() == "D39210003100030A01"
    assert {a.hex() for a in aid.STANDARD_AP_AIDS} == {
        "D392F000260100000001",
        "D3921000310001010408",
        "D3921000310001010402",
        "D3921000310001010401",
    }
    # all AIDs this system assigns are under the Japanese national RID prefix D392
    assert len(aid.instance_aid(aid.Area.LOCAL, 0xFFFFFFFF)) == 8
    assert aid.instance_aid(2, 0x0102).hex() == "D392F10200000102"
