"""The custom card AP input file (R3.3): documented examples parse; every mistake is reported
with its line and path."""

from pathlib import Path

import pytest
from django.utils import translation

from cardap.custom_input import InputFileError, parse

DIR = Path(__file__).resolve().parent.parent / "cardap" / "custom_ap"

GOOD = """\
format: 1
name: test
pin:
  source: holder
  min_length: 4
  max_length: 8
files:
  - fid: "0001"
    structure: binary
    size: 16
    read: pin+mutual
    update: personalisation
  - fid: "0002"
    structure: binary
    size: 100
    read: pin
    update: pin
user_number:
  fid: "0001"
  length: 16
  charset: digits
"""


def issues(text, fmt="yaml"):
    with translation.override("en"):
        with pytest.raises(InputFileError) as exc:
            parse(text, fmt=fmt)
        return [str(i) for i in exc.value.issues]


@pytest.mark.parametrize(
    "name,fmt",
    [("template.yaml", "yaml"), ("examples/points-card.yaml", "yaml"), ("examples/clinic-card.json", "json")],
)
def test_template_and_examples_are_valid(name, fmt):
    spec = parse((DIR / name).read_text(), fmt=fmt)
    assert spec.files and spec.user_number.length > 0


def test_good_file_parses_into_spec():
    spec = parse(GOOD, fmt="yaml")
    assert [f.fid for f in spec.files] == [1, 2]
    assert spec.files[0].read == 0x02 and spec.files[0].update == 0x0F
    assert spec.pin.retry_limit == 3 and spec.pin.source == "holder"
    assert spec.needs_mutual_auth


def test_size_over_limit_reported_with_line_and_path():
    bad = GOOD.replace("size: 100", "size: 70000")
    assert issues(bad) == ["line 15: files[1].size: 70000 exceeds 32767"]


def test_several_mistakes_all_reported_in_line_order():
    bad = (
        GOOD.replace('fid: "0002"', "fid: 2")
        .replace("read: pin\n", "read: secret\n")
        .replace("max_length: 8", "max_length: 3")
    )
    found = issues(bad)
    assert found[0].startswith("line 6: pin.max_length:")
    assert any(i.startswith("line 13: files[1].fid: write the FID as a quoted") for i in found)
    assert any(i.startswith("line 16: files[1].read:") and "free, pin" in i for i in found)


def test_unknown_key_duplicate_fid_and_user_number_outside_file():
    bad = GOOD.replace('fid: "0002"', 'fid: "0001"').replace(
        "  length: 16\n", "  length: 17\n  colour: red\n"
    )
    found = issues(bad)
    assert "line 13: files[1].fid: the FID duplicates files[0]" in found
    assert any(i.startswith("line 21: user_number.colour: unknown key") for i in found)


def test_user_number_must_fit_its_file():
    bad = GOOD.replace("  length: 16\n", "  offset: 4\n  length: 16\n")
    assert issues(bad) == ["line 21: user_number.length: 16 bytes from offset 4 exceed the file size 16"]


def test_pin_needed_but_missing_and_pin_given_but_unused():
    no_pin = GOOD.replace("pin:\n  source: holder\n  min_length: 4\n  max_length: 8\n", "")
    assert issues(no_pin) == ["line 4: files[0]: a file rule needs a PIN but there is no pin"]
    unused = (
        GOOD.replace("read: pin+mutual", "read: free")
        .replace("read: pin\n", "read: free\n")
        .replace("update: pin\n", "update: never\n")
    )
    assert issues(unused) == ["line 4: pin: no file needs a PIN; remove pin"]


def test_eleven_digit_user_number_refused():
    bad = GOOD.replace("length: 16", "length: 11")
    assert issues(bad) == ["line 20: user_number.length: 11 digits has the form of a resident record code"]


def test_json_syntax_error_has_line():
    assert issues('{"format": 1,\n  "files": [}\n', fmt="json") == [
        "line 2: -: JSON syntax error (column 13): Expecting value"
    ]


def test_json_validation_errors_have_lines():
    text = (DIR / "examples/clinic-card.json").read_text().replace('"retry_limit": 5', '"retry_limit": 50')
    found = issues(text, fmt="json")
    assert found == ["line 4: pin.retry_limit: 50 exceeds 15"]


def test_yaml_syntax_error_and_empty_file():
    assert issues("format: 1\nfiles: [\n")[0].startswith("line 3: -: YAML syntax error")
    assert issues("") == ["the input file is empty"]


@pytest.mark.parametrize("fmt,text", [("json", "[" * 30000 + "]" * 30000), ("yaml", "a: " + "[" * 30000)])
def test_deeply_nested_file_is_an_error_not_a_crash(fmt, text):
    assert issues(text, fmt) == ["Nesting is too deep."]
