"""Hostile input gets a precise refusal, never a server error, and the refusal is recorded."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from operators.audit import record
from operators.models import AuditEntry

pytestmark = pytest.mark.django_db


def test_nul_bytes_reach_the_audit_log_readably():
    # PostgreSQL refuses NUL in text and jsonb: the writer must clean every value it stores.
    entry = record(action="security.probe", actor="a\x00b", target="t\x00", detail={"k\x00": ["v\x00"]})
    entry.refresh_from_db()
    assert (entry.actor, entry.target, entry.detail) == ("a\\x00b", "t\\x00", {"k\\x00": ["v\\x00"]})
    assert entry.compute_hash() == entry.hash


def test_stale_session_with_a_nul_in_the_path_is_recorded(world):
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = "expired-session-key"
    response = client.get("/x%00")
    assert response.status_code == 302
    entry = AuditEntry.objects.get(action="auth.session_expired")
    assert entry.detail == {"path": "/x\\x00"}


def test_nul_in_the_roster_provider_is_an_audited_refusal(world, login):
    response = login(world.city_admin).get("/accounts/roster/?provider=%00")
    assert response.status_code == 403
    assert AuditEntry.objects.filter(action="permission.denied", detail__provider="\\x00").exists()


def test_nul_in_a_registry_path_is_a_refusal(world, login):
    assert login(world.city_operator).get("/registry/custom-ap/%00").status_code == 403
    assert login(world.city_admin).get("/registry/custom-ap/%00").status_code == 404
