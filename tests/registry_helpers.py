"""Helpers shared by the registry tests."""

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
