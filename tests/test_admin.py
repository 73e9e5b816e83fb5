"""The Django admin for J-LIS staff: OTP-protected, audited, audit log read-only."""

from __future__ import annotations

import time

import pytest

from operators.models import AuditEntry, Operator
from tests.otp_helpers import fresh_cache  # noqa: F401

pytestmark = pytest.mark.django_db


def test_jlis_registers_an_operator_in_the_admin(world, login):
    client = login(world.jlis)
    response = client.post(
        "/admin/operators/operator/add/",
        {
            "username": "city_new",
            "password1": "a-long-enough-passphrase-2026",
            "password2": "a-long-enough-passphrase-2026",
            "role": "operator",
            "provider": world.city.pk,
            "usable_password": "true",
            "scopes-TOTAL_FORMS": "0",
            "scopes-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, [ln for ln in response.content.decode().splitlines() if "error" in ln]
    user = Operator.objects.get(username="city_new")
    assert user.provider == world.city and user.role == "operator"
    assert AuditEntry.objects.filter(
        action="admin.operator.add", actor="jlis", target=f"operator:{user.pk}", detail__repr="city_new"
    ).exists()


def test_admin_change_needs_recent_code(world, login):
    client = login(world.jlis)
    session = client.session
    session["operators.reauth_at"] = time.time() - 3600
    session.save()
    path = f"/admin/operators/operator/{world.city_operator.pk}/change/"
    assert client.get(path).status_code == 200
    response = client.post(path, {"username": "renamed"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/reauth/")
    world.city_operator.refresh_from_db()
    assert world.city_operator.username == "city_op"


def test_audit_log_is_read_only_in_the_admin(world, login):
    from operators.audit import record

    entry = record(action="test.event", actor="x")
    client = login(world.jlis)
    assert client.get("/admin/operators/auditentry/").status_code == 200
    assert client.get("/admin/operators/auditentry/add/").status_code == 403
    client.post(f"/admin/operators/auditentry/{entry.pk}/delete/", {"post": "yes"})
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


def test_admin_refused_to_other_roles_and_other_provider_admin(world, login):
    for user in (world.city_admin, world.shop_admin, world.auditor, world.city_operator):
        assert login(user).get("/admin/operators/operator/").status_code == 403
        assert AuditEntry.objects.filter(
            action="permission.denied", actor=user.username, target="/admin/operators/operator/"
        ).exists()


def test_admin_never_shows_an_operators_totp_secret(world, login):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.get(user=world.city_operator)
    body = login(world.jlis).get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert "city_op" in body and device.key not in body
