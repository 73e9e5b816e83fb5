"""Manufacturing a card AP on approval (R3.2, R3.3): from the request to the bytes the card gets.

Standard types A, C and D use gpcard's predefined shapes (`standard_description`); a custom AP's
description comes from its input file, and its load file is signed with the J-LIS DAP key. All
encoding is gpcard's (the host protocol library); this module only maps registry records onto it.

Standard layout chosen here: file 0001 holds the user number (one record for type A, binary
otherwise), file 0002 is the data file the request declares.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from cardap import custom_input
from cardap.dapkey import load_dap_private_key
from cardap.models import CardAP
from gpcard import apdesc

USER_NUMBER_FID = 0x0001
DATA_FID = 0x0002
AREAS: dict[str, apdesc.Area] = {
    CardAP.Area.LOCAL: apdesc.Area.LOCAL,
    CardAP.Area.EXTENDED: apdesc.Area.EXTENDED,
}
PIN_SOURCES: dict[str, apdesc.PinSource] = {
    CardAP.PinSource.HOLDER: apdesc.PinSource.HOLDER,
    CardAP.PinSource.SYSTEM: apdesc.PinSource.SYSTEM_FIXED,
}
CHARSETS = {"digits": apdesc.Charset.DIGITS, "alphanumeric": apdesc.Charset.ALPHANUMERIC}
# Default area quotas (card-protocol.md, "Memory"): a request larger than its area never fits.
AREA_QUOTAS: dict[str, int] = {CardAP.Area.LOCAL: 8192, CardAP.Area.EXTENDED: 16384}


@dataclass(frozen=True)
class Product:
    description: bytes  # the card AP description TLV (A0 …)
    load_file: bytes | None  # custom APs: the LOAD data, E2 { 4F ISD, C3 signature } ‖ C4 <data block>
    memory_cost: int  # bytes taken from the area quota (instance, plus the load file for a custom AP)
    sha256: str  # hex SHA-256 of the description (= the load file data block of a custom AP)
    dap_demo_key: bool
    needs_key: bool  # some file rule needs mutual authentication / secure messaging


def aids(area: str, serial: int) -> tuple[str, str]:
    """(instance AID, custom load file AID), upper-case hex, for an allocated serial."""
    return apdesc.instance_aid(AREAS[area], serial).hex(), apdesc.load_file_aid(AREAS[area], serial).hex()


def area_quota(area: str) -> int:
    return AREA_QUOTAS[area]


def _pin_policy(ap: CardAP) -> apdesc.PinPolicy | None:
    if not ap.pin_source:
        return None
    return apdesc.PinPolicy(
        PIN_SOURCES[ap.pin_source], ap.pin_min_length, ap.pin_max_length, ap.pin_retry_limit
    )


def build_description(ap: CardAP, spec: custom_input.CustomAPSpec | None) -> apdesc.CardAPDescription:
    """The validated gpcard description of a request; DescriptionError when it breaks a rule."""
    if ap.is_custom:
        if spec is None:
            raise ValueError("a custom AP needs its parsed input file")
        files = tuple(
            apdesc.FileSpec(
                f.fid,
                apdesc.FileStructure.TRANSPARENT
                if f.structure == "binary"
                else apdesc.FileStructure.LINEAR_FIXED,
                apdesc.AccessRule(f.read),
                apdesc.AccessRule(f.update),
                length=f.size or 0,
                record_count=f.record_count or 0,
                record_length=f.record_length or 0,
            )
            for f in spec.files
        )
        un = spec.user_number
        pin = None
        if spec.pin is not None:
            pin = apdesc.PinPolicy(
                PIN_SOURCES[spec.pin.source], spec.pin.min_length, spec.pin.max_length, spec.pin.retry_limit
            )
        desc = apdesc.CardAPDescription(
            apdesc.APType.CUSTOM,
            files,
            apdesc.UserNumberLocation(un.fid, un.record, un.offset, un.length, CHARSETS[un.charset]),
            pin,
        )
        desc.validate()
        return desc
    length = ap.user_number_length
    if ap.type == CardAP.Type.A:
        number_file = apdesc.FileLayout.records(USER_NUMBER_FID, 1, length)
        location = apdesc.UserNumberLocation(USER_NUMBER_FID, 1, 0, length, CHARSETS[ap.user_number_charset])
    else:
        number_file = apdesc.FileLayout.binary(USER_NUMBER_FID, length)
        location = apdesc.UserNumberLocation(USER_NUMBER_FID, 0, 0, length, CHARSETS[ap.user_number_charset])
    if ap.structure == CardAP.Structure.RECORDS:
        data_file = apdesc.FileLayout.records(DATA_FID, ap.record_count or 0, ap.record_length or 0)
    else:
        data_file = apdesc.FileLayout.binary(DATA_FID, ap.file_size or 0)
    return apdesc.standard_description(
        ap.type, [number_file, data_file], user_number=location, pin_policy=_pin_policy(ap)
    )


def _cost(desc: apdesc.CardAPDescription, data_block: bytes | None) -> int:
    return apdesc.memory_cost(desc) + (len(data_block) if data_block is not None else 0)


def estimated_cost(ap: CardAP, spec: custom_input.CustomAPSpec | None = None) -> int:
    """Bytes the AP will take from its area (raises ValidationError if it cannot be built)."""
    try:
        desc = build_description(ap, spec)
    except apdesc.DescriptionError as exc:
        raise ValidationError(
            _("カードAP記述を作成できません: %(error)s") % {"error": exc}, code="description"
        ) from None
    return _cost(desc, desc.encode() if ap.is_custom else None)


def manufacture(ap: CardAP, spec: custom_input.CustomAPSpec | None) -> Product:
    try:
        desc = build_description(ap, spec)
        encoded = desc.encode()
    except apdesc.DescriptionError as exc:
        raise ValidationError(
            _("カードAP記述を作成できません: %(error)s") % {"error": exc}, code="description"
        ) from None
    needs_key = any(
        rule in (apdesc.AccessRule.PIN_MUTUAL_AUTH, apdesc.AccessRule.PIN_MUTUAL_AUTH_SM)
        for f in desc.files
        for rule in (f.read_rule, f.update_rule)
    )
    load_file = None
    demo = False
    if ap.is_custom:
        data_block = apdesc.build_load_file(desc)
        key, demo = load_dap_private_key()
        load_file = apdesc.load_file_contents(data_block, apdesc.dap_sign(data_block, key))
    return Product(
        description=encoded,
        load_file=load_file,
        memory_cost=_cost(desc, encoded if ap.is_custom else None),
        sha256=apdesc.load_file_hash(encoded).hex(),
        dap_demo_key=demo,
        needs_key=needs_key,
    )
