"""Card AP descriptions and custom load files against the byte layouts of docs/card-protocol.md."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from gpcard import apdesc
from gpcard.aid import AID, ISD_AID, AIDError, Area
from gpcard.apdesc import (
    AccessRule,
    APType,
    CardAPDescription,
    Charset,
    DescriptionError,
    FileLayout,
    FileSpec,
    FileStructure,
    PinPolicy,
    PinSource,
    UserNumberLocation,
)

PIN, FREE = AccessRule.PIN, AccessRule.FREE
HOLDER_PIN = PinPolicy(PinSource.HOLDER, 4, 8, 3)
USER_NO = UserNumberLocation(fid=0x0001, record=1, offset=0, length=12, charset=Charset.DIGITS)


def type_a() -> CardAPDescription:
    return apdesc.standard_description(
        "A", [FileLayout.records(0x0001, 4, 32)], user_number=USER_NO, pin_policy=HOLDER_PIN
    )


# Type A, one record file 0001 of 4 × 32 bytes, holder PIN 4..8 digits with 3 tries, user number
# in record 1, offset 0, 12 digits: written out by hand from the layout in docs/card-protocol.md.
TYPE_A_HEX = (
    "A0"
    "3A"
    "8001"
    "41"  # type 'A'
    "8101"
    "01"  # format version
    "A10C"
    "800101"
    "810104"
    "820108"
    "830103"  # PIN policy
    "A211"
    "80020001"
    "810102"
    "82020420"
    "830102"
    "84010F"  # file 0001: records 4 × 32, 02 / 0F
    "A311"
    "80020001"
    "810101"
    "82020000"
    "83010C"
    "840101"  # user number
)


def test_type_a_encodes_to_the_documented_bytes() -> None:
    assert type_a().encode().hex().upper() == TYPE_A_HEX


def test_decode_is_the_inverse() -> None:
    desc = CardAPDescription.decode(bytes.fromhex(TYPE_A_HEX))
    assert desc == type_a()
    assert desc.files[0].read_rule is AccessRule.PIN_MUTUAL_AUTH


def test_memory_cost_per_doc() -> None:
    # 64 + (32 + 4×32) = 224; two binary files of 100 and 7 bytes: 64 + 132 + 39 = 235
    assert apdesc.memory_cost(type_a()) == 224
    c = apdesc.standard_description(
        "C",
        [FileLayout.binary(0x0010, 100), FileLayout.binary(0x0011, 7)],
        user_number=UserNumberLocation(0x0011, 0, 0, 7),
    )
    assert apdesc.memory_cost(c) == 235
    assert c.pin_policy is None and c.files[0].read_rule == AccessRule.FREE


def test_type_d_shape() -> None:
    d = apdesc.standard_description(
        APType.D,
        [FileLayout.binary(0x0101, 64)],
        user_number=UserNumberLocation(0x0101, 0, 8, 16, Charset.ALPHANUMERIC),
        pin_policy=PinPolicy(PinSource.SYSTEM_FIXED, 6, 6, 5),
    )
    assert d.files[0].read_rule == AccessRule.PIN_MUTUAL_AUTH_SM
    assert CardAPDescription.decode(d.encode()) == d


@pytest.mark.parametrize(
    ("kind", "layout", "pin", "match"),
    [
        ("A", [FileLayout.binary(1, 16)], HOLDER_PIN, "does not allow transparent"),
        ("D", [FileLayout.records(1, 1, 16)], HOLDER_PIN, "does not allow linear_fixed"),
        ("A", [FileLayout.records(1, 1, 16)], None, "no PIN policy"),
        ("C", [FileLayout.records(1, 1, 16)], HOLDER_PIN, "no file needs a PIN"),
        ("X", [FileLayout.records(1, 1, 16)], None, "no standard shape"),
        ("Q", [FileLayout.records(1, 1, 16)], None, "unknown card AP type"),
    ],
)
def test_standard_shapes_enforced(
    kind: str, layout: list[FileLayout], pin: PinPolicy | None, match: str
) -> None:
    with pytest.raises(DescriptionError, match=match):
        apdesc.standard_description(
            kind,
            layout,
            user_number=UserNumberLocation(1, 0 if layout[0].length else 1, 0, 4),
            pin_policy=pin,
        )


def custom(**changes: object) -> CardAPDescription:
    base = CardAPDescription(
        APType.CUSTOM,
        (FileSpec(0x0001, FileStructure.TRANSPARENT, AccessRule.PIN, AccessRule.PIN, length=32),),
        UserNumberLocation(0x0001, 0, 0, 10),
        HOLDER_PIN,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "where", "match"),
    [
        ({"files": ()}, "A0/A2", "1..16 files"),
        (
            {
                "files": tuple(
                    FileSpec(i, FileStructure.TRANSPARENT, FREE, FREE, length=1) for i in range(1, 18)
                )
            },
            "A0/A2",
            "1..16 files",
        ),
        (
            {"files": (FileSpec(0x3F00, FileStructure.TRANSPARENT, PIN, PIN, length=32),)},
            "A0/A2[0]/80",
            "reserved",
        ),
        (
            {"files": (FileSpec(0x3FFF, FileStructure.TRANSPARENT, PIN, PIN, length=32),)},
            "A0/A2[0]/80",
            "reserved",
        ),
        (
            {"files": (FileSpec(0xFFFF, FileStructure.TRANSPARENT, PIN, PIN, length=32),)},
            "A0/A2[0]/80",
            "reserved",
        ),
        (
            {"files": (FileSpec(1, FileStructure.TRANSPARENT, PIN, PIN, length=32),) * 2},
            "A0/A2[1]/80",
            "twice",
        ),
        ({"files": (FileSpec(1, FileStructure.TRANSPARENT, PIN, PIN, length=0),)}, "A0/A2[0]/82", "1..65535"),
        (
            {"files": (FileSpec(1, FileStructure.TRANSPARENT, PIN, PIN, length=70000),)},
            "A0/A2[0]/82",
            "1..65535",
        ),
        (
            {"files": (FileSpec(1, FileStructure.LINEAR_FIXED, PIN, PIN, record_count=0, record_length=9),)},
            "A0/A2[0]/82",
            "1..255",
        ),
        (
            {
                "files": (
                    FileSpec(
                        1,
                        FileStructure.TRANSPARENT,
                        0x05,  # type: ignore[arg-type]
                        PIN,
                        length=32,
                    ),
                )
            },
            "A0/A2[0]/83",
            "AccessRule",
        ),
        ({"pin_policy": None}, "A0/A1", "no PIN policy"),
        ({"pin_policy": PinPolicy(PinSource.HOLDER, 8, 4, 3)}, "A0/A1", "minimum <= maximum"),
        ({"pin_policy": PinPolicy(PinSource.HOLDER, 4, 8, 0)}, "A0/A1/83", "retry limit"),
        ({"pin_policy": PinPolicy(PinSource.HOLDER, 4, 8, 16)}, "A0/A1/83", "retry limit"),
        ({"user_number": UserNumberLocation(0x0002, 0, 0, 10)}, "A0/A3/80", "not among the files"),
        ({"user_number": UserNumberLocation(0x0001, 1, 0, 10)}, "A0/A3/81", "00 for a binary"),
        ({"user_number": UserNumberLocation(0x0001, 0, 30, 10)}, "A0/A3/82", "does not fit in 32"),
        ({"version": 2}, "A0/81", "format version"),
    ],
)
def test_invalid_descriptions_refused(changes: dict[str, object], where: str, match: str) -> None:
    with pytest.raises(DescriptionError, match=match) as err:
        custom(**changes).encode()
    assert err.value.where == where


def test_custom_allows_free_rules() -> None:
    desc = custom(
        files=(FileSpec(0x0001, FileStructure.TRANSPARENT, AccessRule.FREE, AccessRule.NEVER, length=32),),
        pin_policy=None,
    )
    assert CardAPDescription.decode(desc.encode()) == desc


@pytest.mark.parametrize(
    ("hexdata", "where", "match"),
    [
        ("A1024100", "A0", "expected tag A0"),
        (TYPE_A_HEX + "00", "A0", "trailing"),
        (TYPE_A_HEX.replace("800141", "80015A", 1), "A0/80", "unknown card AP type 5A"),
        ("A006800141810101", "A0", "missing user number"),
        ("A003800141", "A0", "missing tag 81"),
        ("A00780024141810101", "A0/80", "must have 1 bytes"),
        ("A006800141800141", "A0", "appears twice"),
        ("A003990100", "A0", "unknown tag 99"),
        ("A0028001", "A0", "needs 1 bytes"),
    ],
)
def test_decode_errors_name_field(hexdata: str, where: str, match: str) -> None:
    with pytest.raises(DescriptionError, match=match) as err:
        CardAPDescription.decode(bytes.fromhex(hexdata))
    assert err.value.where == where


@given(st.binary(max_size=120))
def test_decode_raises_only_description_error(data: bytes) -> None:
    with contextlib.suppress(DescriptionError):
        CardAPDescription.decode(data)


@given(st.binary(min_size=1, max_size=100))
def test_decode_mutated_valid_description(noise: bytes) -> None:
    data = bytearray(bytes.fromhex(TYPE_A_HEX))
    for i, b in enumerate(noise):
        data[(i * 7 + b) % len(data)] ^= b
    with contextlib.suppress(DescriptionError):
        CardAPDescription.decode(bytes(data))


def test_instance_and_load_file_aids() -> None:
    assert apdesc.instance_aid(Area.LOCAL, 0x12345678) == AID.from_hex("D392F10112345678")
    assert apdesc.load_file_aid(2, 1).hex() == "D392F20200000001"
    assert apdesc.custom_module_aid(2, 1).hex() == "D392F2020000000101"
    assert apdesc.standard_elf_aid("C").hex() == "D39210003100030C"
    assert apdesc.standard_module_aid("D").hex() == "D39210003100030D01"
    with pytest.raises(AIDError):
        apdesc.instance_aid(3, 1)
    with pytest.raises(AIDError):
        apdesc.instance_aid(1, 1 << 32)


def dap_key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(0xC0FFEE, ec.SECP256R1())


def test_dap_signature_verifies_with_plain_cryptography() -> None:
    block = apdesc.build_load_file(custom())
    sig = apdesc.dap_sign(block, dap_key())
    assert len(sig) == 64
    # verify independently of gpcard: rebuild DER from r ‖ s and check with cryptography
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    dap_key().public_key().verify(der, block, ec.ECDSA(hashes.SHA256()))
    assert apdesc.dap_verify(block, sig, dap_key().public_key())
    assert not apdesc.dap_verify(block + b"\x00", sig, dap_key().public_key())
    assert not apdesc.dap_verify(block, sig[:63], dap_key().public_key())
    with pytest.raises(apdesc.LoadFileError, match="P-256"):
        apdesc.dap_sign(block, ec.generate_private_key(ec.SECP384R1()))


def test_build_load_file_only_for_custom() -> None:
    with pytest.raises(DescriptionError):
        apdesc.build_load_file(type_a())
    assert apdesc.load_file_hash(b"abc").hex() == hashlib.sha256(b"abc").hexdigest()


def test_load_blocks_layout() -> None:
    block = apdesc.build_load_file(custom())
    sig = bytes(range(64))
    blocks = apdesc.load_blocks(ISD_AID, block, sig, block_size=32)
    joined = b"".join(blocks)
    expected = bytes.fromhex("E24C4F08A000000151000000C340") + sig + bytes([0xC4, len(block)]) + block
    assert joined == expected
    assert all(len(b) == 32 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 32
    assert apdesc.parse_load_file(joined) == (ISD_AID, sig, block)
    assert max(len(b) for b in apdesc.load_blocks(ISD_AID, block, sig)) <= 239


def test_load_blocks_refusals() -> None:
    with pytest.raises(apdesc.LoadFileError, match="64 bytes"):
        apdesc.load_blocks(ISD_AID, b"\xa0\x00", b"\x00" * 63)
    with pytest.raises(apdesc.LoadFileError, match="256"):
        apdesc.load_blocks(ISD_AID, b"\x00" * 600, b"\x00" * 64, block_size=2)
    with pytest.raises(apdesc.LoadFileError):
        apdesc.parse_load_file(bytes.fromhex("C400"))


RULES = st.sampled_from(list(AccessRule))


@st.composite
def descriptions(draw: st.DrawFn) -> CardAPDescription:
    fids = draw(
        st.lists(
            st.integers(0, 0xFFFF).filter(lambda f: f not in (0x3F00, 0x3FFF, 0xFFFF)),
            min_size=1,
            max_size=16,
            unique=True,
        )
    )
    files = []
    for fid in fids:
        read, update = draw(RULES), draw(RULES)
        if draw(st.booleans()):
            files.append(
                FileSpec(fid, FileStructure.TRANSPARENT, read, update, length=draw(st.integers(1, 0xFFFF)))
            )
        else:
            files.append(
                FileSpec(
                    fid,
                    FileStructure.LINEAR_FIXED,
                    read,
                    update,
                    record_count=draw(st.integers(1, 255)),
                    record_length=draw(st.integers(1, 255)),
                )
            )
    first = files[0]
    room = first.length if first.structure == FileStructure.TRANSPARENT else first.record_length
    length = draw(st.integers(1, min(room, 255)))
    user_number = UserNumberLocation(
        first.fid,
        0 if first.structure == FileStructure.TRANSPARENT else draw(st.integers(1, first.record_count)),
        draw(st.integers(0, room - length)),
        length,
        draw(st.sampled_from(list(Charset))),
    )
    needs_pin = any(f.read_rule.needs_pin or f.update_rule.needs_pin for f in files)
    pin = None
    if needs_pin:
        lo = draw(st.integers(4, 16))
        pin = PinPolicy(
            draw(st.sampled_from(list(PinSource))), lo, draw(st.integers(lo, 16)), draw(st.integers(1, 15))
        )
    return CardAPDescription(APType.CUSTOM, tuple(files), user_number, pin)


@given(descriptions())
def test_description_round_trip(desc: CardAPDescription) -> None:
    raw = desc.encode()
    assert CardAPDescription.decode(raw) == desc
    assert apdesc.memory_cost(desc) == 64 + sum(32 + f.size for f in desc.files)
