"""Operator pages: sync history with each provider's last pull, and API key management."""

import pytest
from django.test import Client

from cardap.apikeys import find_key, issue_key
from cardap.models import ProviderAPIKey
from operators.models import AuditEntry
from revocation import services
from revocation.models import ProviderPull
from tests.revocation_support import at, fast_passwords, write  # noqa: F401

pytestmark = pytest.mark.django_db
HISTORY = "/revocation/"
KEYS = "/revocation/keys/"


@pytest.fixture
def history(world, tmp_path):
    services.apply_feed(path=write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))]))
    bad = write(tmp_path / "x", 3, [("AB01", "resumed", "found", at(2, 9))], previous=2)
    services.apply_feed(path=bad)
    key_city, _ = issue_key(provider=world.city, name="c")
    key_shop, _ = issue_key(provider=world.shop, name="s")
    services.record_pull(provider=world.city, key=key_city, kind="delta", last_seq=11)
    services.record_pull(provider=world.shop, key=key_shop, kind="snapshot", last_seq=22)


def test_jlis_sees_all_feeds_reasons_and_every_providers_pull(world, history, login):
    response = login(world.jlis).get(HISTORY)
    assert response.status_code == 200
    html = response.content.decode()
    assert "badge-ok" in html and "badge-bad" in html
    assert "expected feed 2" in html  # the precise reason of the refused feed
    assert "フィード番号に欠番があります" in html
    assert world.city.name in html and world.shop.name in html


def test_provider_admin_sees_history_and_only_its_own_pull(world, history, login):
    html = login(world.city_admin).get(HISTORY).content.decode()
    assert world.city.name in html and world.shop.name not in html
    assert "expected feed 2" not in html  # upstream details stay with J-LIS staff


@pytest.mark.parametrize("who", ["city_operator", "shop_operator", "auditor"])
def test_other_roles_forbidden_from_history(world, history, login, who):
    assert login(getattr(world, who)).get(HISTORY).status_code == 403


def test_history_needs_sign_in_with_second_factor(world, history):
    assert Client().get(HISTORY).status_code == 302
    no_otp = Client()
    no_otp.force_login(world.jlis)  # password only, no verified OTP device
    assert no_otp.get(HISTORY).status_code == 302


def test_history_in_english(world, history, login):
    client = login(world.jlis)
    client.cookies["django_language"] = "en"
    html = client.get(HISTORY, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Revocation sync history" in html


def test_provider_admin_issues_key_shown_once_with_allowlist(world, login):
    client = login(world.city_admin)
    response = client.post(KEYS, {"name": "基幹システム", "allowed_networks": "192.0.2.0/24\n2001:db8::/32"})
    assert response.status_code == 200
    token = response.context["token"]
    assert token and token in response.content.decode()
    key = find_key(token)
    assert key.provider == world.city and key.allowed_networks == ["192.0.2.0/24", "2001:db8::/32"]
    assert token not in client.get(KEYS).content.decode()  # never shown again
    entry = AuditEntry.objects.get(action="apikey.issue")
    assert token not in str(entry.detail) and entry.actor == "city_admin"


def test_bad_network_refused_with_the_entry_named(world, login):
    response = login(world.city_admin).post(KEYS, {"name": "k", "allowed_networks": "10.0.0.0/8, 10.0.0.300"})
    assert response.status_code == 400
    assert "10.0.0.300" in response.content.decode()
    assert not ProviderAPIKey.objects.exists()


def test_provider_admin_revokes_own_key_not_another_providers(world, login):
    own, _ = issue_key(provider=world.city, name="own")
    foreign, _ = issue_key(provider=world.shop, name="foreign")
    client = login(world.city_admin)
    assert client.post(f"/revocation/keys/{foreign.pk}/revoke/").status_code == 404
    foreign.refresh_from_db()
    assert foreign.is_active
    assert client.post(f"/revocation/keys/{own.pk}/revoke/").status_code == 302
    own.refresh_from_db()
    assert not own.is_active
    assert AuditEntry.objects.filter(action="apikey.revoke").count() == 1


def test_key_list_shows_only_own_keys(world, login):
    issue_key(provider=world.city, name="city-key")
    issue_key(provider=world.shop, name="shop-key")
    html = login(world.shop_admin).get(KEYS).content.decode()
    assert "shop-key" in html and "city-key" not in html


@pytest.mark.parametrize("who", ["jlis", "city_operator", "auditor"])
def test_other_roles_cannot_manage_keys(world, login, who):
    client = login(getattr(world, who))
    assert client.get(KEYS).status_code == 403
    assert client.post(KEYS, {"name": "x"}).status_code == 403
    assert not ProviderAPIKey.objects.exists()


def test_revoke_needs_post(world, login):
    own, _ = issue_key(provider=world.city, name="own")
    assert login(world.city_admin).get(f"/revocation/keys/{own.pk}/revoke/").status_code == 405
    assert ProviderPull.objects.count() == 0
