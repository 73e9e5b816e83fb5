"""Every audit action code the code base writes has a readable label for auditors."""
import re
from pathlib import Path

from django.utils import translation

from operators.audit_labels import LABELS, action_label

ROOT = Path(__file__).resolve().parent.parent
# Literal codes passed as `action="..."` or to the maintenance audit helper.
CODE = re.compile(r"(?:action=|_audit_window\()\"([a-z_]+\.[a-z_.]+)\"")


def written_codes() -> set[str]:
    codes = set()
    for app in ("config", "cardap", "operators", "revocation", "loading"):
        for path in (ROOT / app).rglob("*.py"):
            codes |= set(CODE.findall(path.read_text()))
    return codes


def test_every_written_action_code_has_a_label():
    codes = written_codes()
    assert len(codes) > 30  # the scan finds the codes (guards against a broken pattern)
    assert sorted(codes - set(LABELS)) == []


def test_labels_are_translated_and_dynamic_codes_fall_back():
    with translation.override("en"):
        assert action_label("auth.password_failed") == "Wrong password"
        assert action_label("admin.cardap.change") == "Change in the admin"
    assert action_label("auth.password_failed") == "パスワード誤り"
    assert action_label("something.unknown") == "something.unknown"
