"""The relay's credential check (loading.relay_auth.terminal_for): one plain statement, and the
same rule as operators.services.authenticate_terminal — revoked, rotated, inactive terminals and
providers that are not live are refused at once."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from cardap.models import Provider
from loading import relay_auth
from operators import services
from operators.models import Terminal
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def terminal(world):
    return factories.terminal(world.city, "窓口", administrator=world.city_admin)


def test_one_statement_gives_the_terminal_and_its_provider(world, terminal):
    token = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    with CaptureQueriesContext(connection) as queries:
        found = relay_auth.terminal_for(token)
        assert found == terminal
        assert found.provider == world.city and found.provider.name == world.city.name
        assert found.name == terminal.name and found.location == terminal.location
        assert found.credential_issued_at is not None and found.credential_issued_at.tzinfo is not None
    assert len(queries) == 1
    assert found.provider.is_live


def test_revoked_rotated_and_wrong_credentials_are_refused(world, terminal):
    old = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    new = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    assert relay_auth.terminal_for(old) is None
    assert relay_auth.terminal_for(new) == terminal
    assert relay_auth.terminal_for(new[:-1] + ("A" if new[-1] != "A" else "B")) is None
    services.revoke_terminal_credential(actor=world.city_admin, terminal=terminal)
    assert relay_auth.terminal_for(new) is None


def test_inactive_terminal_and_provider_not_live_are_refused(world, terminal):
    token = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    Terminal.objects.filter(pk=terminal.pk).update(is_active=False)
    assert relay_auth.terminal_for(token) is None
    Terminal.objects.filter(pk=terminal.pk).update(is_active=True)
    assert relay_auth.terminal_for(token) == terminal
    Provider.objects.filter(pk=world.city.pk).update(status=Provider.Status.SUSPENDED)
    assert relay_auth.terminal_for(token) is None


@pytest.mark.parametrize(
    "credential", ["", "cat_", "Bearer x", "cat_" + "a" * 300, "cat_\x00abc_def", "cak_0000abcd_x"]
)
def test_garbage_is_refused_without_error(credential):
    assert relay_auth.terminal_for(credential) is None


def test_a_terminal_revoked_after_issue_is_refused_even_with_the_hash_left(world, terminal):
    token = services.issue_terminal_credential(actor=world.city_admin, terminal=terminal)
    Terminal.objects.filter(pk=terminal.pk).update(credential_revoked_at=timezone.now())
    assert relay_auth.terminal_for(token) is None
