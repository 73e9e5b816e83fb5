"""The README's configuration table documents every variable the settings read, and the commands
it tells people to run exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.core.management import call_command, get_commands

from operators.models import AuditEntry, Operator
from tests.test_compose import settings_env_vars

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def test_every_setting_variable_is_documented():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", README))
    missing = settings_env_vars() - documented
    assert not missing, f"README configuration table lacks {sorted(missing)}"


def test_manage_commands_named_in_readme_exist():
    named = set(re.findall(r"manage\.py ([a-z_]+)", README))
    assert {"demo_otp", "verify_audit", "create_jlis_staff"} <= named
    assert named <= set(get_commands())


@pytest.mark.django_db
def test_create_jlis_staff(capsys):
    call_command("create_jlis_staff", "chief", "--email", "chief@example.jp")
    password = capsys.readouterr().out.split("(shown once): ")[1].split()[0]
    user = Operator.objects.get(username="chief")
    assert user.role == "jlis_staff" and user.is_staff and user.provider is None
    assert user.check_password(password)
    assert AuditEntry.objects.filter(action="operator.create", target="chief").exists()
