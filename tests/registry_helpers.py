"""Helpers shared by the registry tests."""

import itertools

from cardap.models import CardAP

_serial = itertools.count(0x7F000000)


def approved_ap(provider, name, *, area="extended", type="C"):
    """An approved card AP written straight to the database (no manufacture): for tests that only
    need one to exist."""
    serial = next(_serial)
    return CardAP.objects.create(
        provider=provider,
        name=name,
        type=type,
        area=area,
        status=CardAP.Status.APPROVED,
        aid=f"D392F1{'01' if area == 'local' else '02'}{serial:08X}",
        serial=serial,
    )


STANDARD_FIELDS = {
    "A": {"structure": "records", "record_count": 4, "record_length": 32, "pin_source": "holder"},
    "C": {"structure": "binary", "file_size": 64, "pin_source": ""},
    "D": {"structure": "binary", "file_size": 128, "pin_source": "system"},
}


def request_fields(type="C", area="extended", **extra):
    fields = {
        "name": f"テスト{type}型",
        "type": type,
        "area": area,
        "purpose": "テスト用",
        "user_number_length": 16,
        "user_number_charset": "digits",
    }
    if type in STANDARD_FIELDS:
        fields.update(STANDARD_FIELDS[type])
    fields.update(extra)
    return fields
