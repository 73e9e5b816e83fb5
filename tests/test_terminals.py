"""Terminals and their agent credentials: shown once, stored hashed, rotatable, revocable."""

from __future__ import annotations

import hashlib

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.test import APIRequestFactory

from cardap.models import Provider
from operators import services
from operators.authentication import TerminalAuthentication
from operators.models import AuditEntry, Terminal

pytestmark = pytest.mark.django_db


@pytest.fixture
def terminal(world):
    return services.register_terminal(
        actor=world.city_admin,
        provider_id=world.city.pk,
        name="窓口1",
        location="本庁舎1階",
        administrator=world.city_admin,
    )


def test_credential_is_stored_only_as_sha256(world, terminal):
    token = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    terminal.refresh_from_db()
    assert token.startswith("cat_") and len(token) > 40
    assert terminal.credential_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(list(Terminal.objects.values()))
    assert not AuditEntry.objects.filter(detail__icontains=token[-20:]).exists()
    assert services.authenticate_terminal(token) == terminal
    assert services.authenticate_terminal(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert services.authenticate_terminal("") is None


def test_rotation_invalidates_the_old_credential(world, terminal):
    old = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    new = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    assert old != new
    assert services.authenticate_terminal(old) is None
    assert services.authenticate_terminal(new) == terminal
    assert AuditEntry.objects.filter(action="terminal.credential_rotate", target="窓口1").count() == 1


def test_revocation_and_inactive_terminal_or_provider(world, terminal):
    token = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    Terminal.objects.filter(pk=terminal.pk).update(is_active=False)
    assert services.authenticate_terminal(token) is None
    Terminal.objects.filter(pk=terminal.pk).update(is_active=True)
    Provider.objects.filter(pk=world.city.pk).update(status=Provider.Status.SUSPENDED)
    assert services.authenticate_terminal(token) is None
    Provider.objects.filter(pk=world.city.pk).update(status=Provider.Status.LIVE)
    assert services.authenticate_terminal(token) == terminal
    services.revoke_terminal_credential(actor=world.city_admin, terminal=terminal)
    assert services.authenticate_terminal(token) is None
    terminal.refresh_from_db()
    assert terminal.credential_revoked_at is not None and not terminal.has_credential


def test_other_provider_admin_cannot_touch_terminal(world, terminal):
    with pytest.raises(PermissionDenied, match="他のサービス提供者"):
        services.issue_terminal_credential(actor=world.shop_admin, terminal=terminal)
    terminal.refresh_from_db()
    assert terminal.credential_hash is None
    assert AuditEntry.objects.filter(action="permission.denied", actor="shop_admin").exists()
    with pytest.raises(PermissionDenied):
        services.register_terminal(
            actor=world.shop_admin,
            provider_id=world.city.pk,
            name="X",
            location="Y",
            administrator=world.shop_admin,
        )
    with pytest.raises(PermissionDenied, match="提供者管理者またはJ-LIS職員"):
        services.revoke_terminal_credential(actor=world.city_operator, terminal=terminal)


def test_terminal_administrator_must_be_an_admin_of_the_same_provider(world):
    for admin, message in ((world.shop_admin, "同じサービス提供者"), (world.city_operator, "端末管理者")):
        with pytest.raises(ValidationError, match=message):
            services.register_terminal(
                actor=world.city_admin, provider_id=world.city.pk, name="T", location="L", administrator=admin
            )
    assert not Terminal.objects.exists()
    term_admin = world.city_terminal_admin
    t = services.register_terminal(
        actor=world.city_admin, provider_id=world.city.pk, name="T", location="L", administrator=term_admin
    )
    assert t.administrator == term_admin


def test_drf_terminal_authentication(world, terminal):
    token = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    auth = TerminalAuthentication()
    factory = APIRequestFactory()
    from rest_framework.request import Request

    user, got = auth.authenticate(Request(factory.get("/agent/", HTTP_AUTHORIZATION=f"Terminal {token}")))
    assert got == terminal and user == world.city_admin
    terminal.refresh_from_db()
    assert terminal.last_seen_at is not None
    assert auth.authenticate(Request(factory.get("/agent/"))) is None
    with pytest.raises(AuthenticationFailed):
        auth.authenticate(Request(factory.get("/agent/", HTTP_AUTHORIZATION="Terminal cat_bogus_token")))
