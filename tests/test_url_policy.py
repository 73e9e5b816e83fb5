"""Every state-changing URL outside the admin, walked generically from the URL configuration: the
ones the README promises need a recently entered code, another provider's administrator changes
nothing anywhere, and whatever a POST changes leaves an audit entry."""

from __future__ import annotations

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from cardap.apikeys import issue_key
from cardap.models import AutoLoadPreset
from operators.models import AuditEntry
from tests import factories
from tests.test_admin_policy import snapshot, stale

pytestmark = pytest.mark.django_db

SKIP_PREFIXES = ("admin/", "i18n/", "api/", "static/")
# "changing roles, permitted operations or terminal credentials asks for a code again" (README),
# and new backup codes.
REAUTH_PROMISED = {
    "operators:person_create",
    "operators:person_edit",
    "operators:person_reset",
    "operators:person_scopes",
    "operators:terminal_credential",
    "operators:backup_codes",
    "cardap:access-keys",  # exporting card AP access keys
}
# What a form would send, so that the walk reaches the write and not only the form errors.
DATA = {
    "operators:person_reset": {"what": "password"},
    "operators:terminal_credential": {"action": "issue"},
    "revocation:revoke-key": {},
    "cardap:preset-delete": {},
}


def routes(resolver: URLResolver | None = None, prefix: str = "", namespace: str = ""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            ns = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from routes(entry, route, ns)
        elif isinstance(entry, URLPattern) and not route.startswith(SKIP_PREFIXES):
            yield f"{namespace}{entry.name}", route


@pytest.fixture
def city_objects(world):
    terminal = factories.terminal(world.city, "窓口", administrator=world.city_admin)
    preset = AutoLoadPreset.objects.create(provider=world.city, name="市のセット")
    ap = factories.card_ap(world.city, "市のAP", status="requested")
    key, _token = issue_key(provider=world.city, name="市のキー")
    return {
        "people/": world.city_operator.pk,
        "terminals/": terminal.pk,
        "presets/": preset.pk,
        "requests/": ap.pk,
        "keys/": key.pk,
    }


def concrete(route: str, objects: dict[str, int]) -> str:
    path = "/" + route
    for marker, pk in objects.items():
        path = path.replace(f"{marker}<int:pk>", f"{marker}{pk}").replace(
            f"{marker}<int:key_id>", f"{marker}{pk}"
        )
    path = path.replace("<str:name>", "template.yaml")
    path = re.sub(r"<str:[a-z_]+>", "D-20270101-0001", path)
    path = re.sub(r"<uuid:[a-z_]+>", "00000000-0000-0000-0000-000000000000", path)
    return re.sub(r"<(?:int|slug|path):[a-z_]+>", "999999", path)


def posts(objects, *, objects_only: bool = False):
    """(url name, path) of every URL; with `objects_only`, those naming one object by its id."""
    for name, route in routes():
        if not objects_only or "<int:" in route:
            yield name, concrete(route, objects)


def test_the_walk_covers_the_promised_urls(city_objects):
    names = {name for name, _path in posts(city_objects)}
    assert names >= REAUTH_PROMISED
    assert all("<" not in path for _name, path in posts(city_objects))


def test_promised_urls_need_a_recent_code(world, login, city_objects):
    client = stale(login(world.city_admin))
    before, entries = snapshot(), AuditEntry.objects.count()
    for name, path in posts(city_objects):
        if name in REAUTH_PROMISED:
            response = client.post(path, DATA.get(name, {}))
            assert response.status_code == 302 and response["Location"].startswith("/accounts/reauth/"), name
    assert snapshot() == before and AuditEntry.objects.count() == entries


def test_another_providers_admin_changes_nothing_anywhere(world, login, city_objects):
    client = login(world.shop_admin)
    before = snapshot()
    walked = 0
    for name, path in posts(city_objects, objects_only=True):
        response = client.post(path, DATA.get(name, {}))
        assert response.status_code in (404, 405), (name, response.status_code)
        walked += 1
    assert walked >= 8 and snapshot() == before


@pytest.mark.parametrize("who", ["city_admin", "city_operator", "city_auditor", "jlis"])
def test_whatever_a_post_changes_is_audited(world, login, city_objects, who):
    client = login(getattr(world, who))
    for name, path in posts(city_objects):
        if name in ("operators:logout", "operators:login", "operators:otp", "operators:enrol"):
            continue  # the sign-in steps have their own tests (sessions are not rows here)
        before, entries = snapshot(), AuditEntry.objects.count()
        response = client.post(path, DATA.get(name, {}))
        assert response.status_code < 500, name
        if snapshot() != before:
            assert AuditEntry.objects.count() > entries, f"{name} changed data unaudited"
