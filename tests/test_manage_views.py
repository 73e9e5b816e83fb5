"""Provider-admin pages: allowed role, forbidden role, other provider for each; refusals are
clear, audited and change nothing."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from operators.models import AuditEntry, Operator, OperatorScope, Terminal
from tests.otp_helpers import fresh_cache  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def city_terminal(world):
    return Terminal.objects.create(
        provider=world.city, name="窓口1", location="1F", administrator=world.city_admin
    )


def denied(response, text):
    assert response.status_code == 403
    assert text in response.content.decode()


def hidden(response):
    """Another provider's object: a 404 like a missing one, and the refusal audited."""
    assert response.status_code == 404
    entry = AuditEntry.objects.order_by("-id").first()
    assert entry.action == "permission.denied" and entry.detail["reason"] == "other_provider"
    assert entry.detail["status"] == 404


def last_action():
    return AuditEntry.objects.order_by("-id").values_list("action", flat=True).first()


# --- people list ---


def test_people_list_shows_own_provider_only(world, login):
    body = login(world.city_admin).get("/accounts/people/").content.decode()
    assert "city_op" in body and "shop_op" not in body


def test_people_list_forbidden_for_operator_and_auditor(world, login):
    denied(login(world.city_operator).get("/accounts/people/"), "この画面を利用する権限がありません")
    denied(login(world.auditor).get("/accounts/people/"), "この画面を利用する権限がありません")
    assert last_action() == "permission.denied"


def test_forbidden_message_in_english(world, login):
    client = login(world.city_operator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    denied(client.get("/accounts/people/"), "You are not allowed to use this page.")


# --- create ---


def test_provider_admin_creates_operator_in_own_provider(world, login):
    response = login(world.city_admin).post(
        "/accounts/people/new/",
        {"username": "city_new", "last_name": "新人", "first_name": "一", "email": "", "role": "operator"},
    )
    assert response.status_code == 200
    new = Operator.objects.get(username="city_new")
    assert new.provider == world.city and new.role == "operator"
    password = response.content.decode().split('data-testid="initial-password">')[1].split("<")[0]
    assert new.check_password(password)
    assert AuditEntry.objects.filter(action="operator.create", target="city_new", actor="city_admin").exists()


def test_provider_admin_cannot_create_jlis_staff(world, login):
    response = login(world.city_admin).post(
        "/accounts/people/new/", {"username": "fake_jlis", "last_name": "偽", "role": "jlis_staff"}
    )
    assert response.status_code == 200
    assert "正しく選択してください" in response.content.decode()
    assert not Operator.objects.filter(username="fake_jlis").exists()


def test_service_refuses_jlis_staff_creation_and_audits(world):
    from django.core.exceptions import PermissionDenied

    from operators import services

    with pytest.raises(PermissionDenied, match="J-LIS職員のアカウントはJ-LIS職員だけ"):
        services.create_operator(
            actor=world.city_admin, provider_id=world.city.pk, username="x", role="jlis_staff"
        )
    assert last_action() == "permission.denied"
    assert not Operator.objects.filter(username="x").exists()


def test_create_forbidden_for_operator(world, login):
    denied(
        login(world.city_operator).post(
            "/accounts/people/new/", {"username": "x", "last_name": "x", "role": "operator"}
        ),
        "権限がありません",
    )
    assert not Operator.objects.filter(username="x").exists()


def test_duplicate_username_is_a_clear_error(world, login):
    response = login(world.city_admin).post(
        "/accounts/people/new/", {"username": "shop_op", "last_name": "重複", "role": "operator"}
    )
    assert "このユーザー名は既に使われています" in response.content.decode()


# --- edit / role change ---


def test_role_change_is_audited_as_permission_change(world, login):
    response = login(world.city_admin).post(
        f"/accounts/people/{world.city_operator.pk}/",
        {"last_name": "窓口", "first_name": "", "email": "", "role": "terminal_admin", "is_active": "on"},
    )
    assert response.status_code == 302
    world.city_operator.refresh_from_db()
    assert world.city_operator.role == "terminal_admin"
    entry = AuditEntry.objects.get(action="operator.permission_change")
    assert entry.detail == {"changes": {"role": ["operator", "terminal_admin"]}}


def test_other_provider_admin_cannot_edit(world, login):
    before = Operator.objects.values().get(pk=world.city_operator.pk)
    client = login(world.shop_admin)
    hidden(client.get(f"/accounts/people/{world.city_operator.pk}/"))
    hidden(
        client.post(
            f"/accounts/people/{world.city_operator.pk}/",
            {"last_name": "乗っ取り", "role": "provider_admin", "is_active": "on"},
        )
    )
    assert Operator.objects.values().get(pk=world.city_operator.pk) == before
    entry = AuditEntry.objects.filter(action="permission.denied").last()
    assert entry.actor == "shop_admin" and entry.provider_id_snapshot == world.shop.pk
    assert entry.target == f"/accounts/people/{world.city_operator.pk}/"


def test_other_provider_object_looks_like_a_missing_one(world, login):
    client = login(world.shop_admin)
    other = client.get(f"/accounts/people/{world.city_operator.pk}/")
    missing = client.get("/accounts/people/999999/")
    assert other.status_code == missing.status_code == 404

    def page(response, path):  # the same page but for the requested path and the per-render CSRF mask
        text = re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())
        return text.replace(path, "PATH")

    other_path = f"/accounts/people/{world.city_operator.pk}/"
    assert page(other, other_path) == page(missing, "/accounts/people/999999/")


def test_edit_forbidden_for_operator(world, login):
    denied(login(world.city_operator).get(f"/accounts/people/{world.city_admin.pk}/"), "権限がありません")


def test_admin_cannot_demote_self(world, login):
    response = login(world.city_admin).post(
        f"/accounts/people/{world.city_admin.pk}/", {"last_name": "x", "role": "operator", "is_active": "on"}
    )
    assert "自分自身の役割変更" in response.content.decode()
    world.city_admin.refresh_from_db()
    assert world.city_admin.role == "provider_admin"


def test_cannot_demote_a_terminal_administrator(world, login, city_terminal):
    other_admin = Operator.objects.create_user("city_admin2", role="provider_admin", provider=world.city)
    city_terminal.administrator = other_admin
    city_terminal.save()
    response = login(world.city_admin).post(
        f"/accounts/people/{other_admin.pk}/", {"last_name": "x", "role": "operator", "is_active": "on"}
    )
    assert "端末管理者に指定されています" in response.content.decode()
    other_admin.refresh_from_db()
    assert other_admin.role == "provider_admin"


# --- resets ---


def test_password_and_otp_reset(world, login):
    client = login(world.city_admin)
    body = client.post(
        f"/accounts/people/{world.city_operator.pk}/reset/", {"what": "password"}
    ).content.decode()
    password = body.split('data-testid="initial-password">')[1].split("<")[0]
    world.city_operator.refresh_from_db()
    assert world.city_operator.check_password(password)
    client.post(f"/accounts/people/{world.city_operator.pk}/reset/", {"what": "otp"})
    from django_otp.plugins.otp_totp.models import TOTPDevice

    assert not TOTPDevice.objects.filter(user=world.city_operator).exists()
    assert {"operator.reset_password", "operator.reset_otp"} <= set(
        AuditEntry.objects.values_list("action", flat=True)
    )


def test_reset_by_other_provider_refused(world, login):
    old = world.city_operator.password
    path = f"/accounts/people/{world.city_operator.pk}/reset/"
    hidden(login(world.shop_admin).post(path, {"what": "password"}))
    world.city_operator.refresh_from_db()
    assert world.city_operator.password == old


# --- scopes ---


def test_scope_page_sets_scopes(world, login, city_terminal):
    client = login(world.city_admin)
    assert client.get(f"/accounts/people/{world.city_operator.pk}/scopes/").status_code == 200
    response = client.post(
        f"/accounts/people/{world.city_operator.pk}/scopes/",
        {
            "load__on": "on",
            "load__terminals": [city_terminal.pk],
            "load__all_card_aps": "on",
            "diagnose__on": "on",
            "diagnose__all_terminals": "on",
        },
    )
    assert response.status_code == 302
    scopes = {s.operation: s for s in world.city_operator.scopes.all()}
    assert set(scopes) == {"load", "diagnose"}
    assert list(scopes["load"].terminals.all()) == [city_terminal] and scopes["load"].all_card_aps
    assert scopes["diagnose"].all_terminals and not scopes["diagnose"].all_card_aps


def test_scope_page_refuses_foreign_terminal(world, login):
    shop_terminal = Terminal.objects.create(
        provider=world.shop, name="S", location="L", administrator=world.shop_admin
    )
    response = login(world.city_admin).post(
        f"/accounts/people/{world.city_operator.pk}/scopes/",
        {"load__on": "on", "load__terminals": [shop_terminal.pk]},
    )
    assert response.status_code == 200 and "正しく選択してください" in response.content.decode()
    assert not OperatorScope.objects.exists()


def test_scope_page_other_provider_and_forbidden_role(world, login):
    path = f"/accounts/people/{world.city_operator.pk}/scopes/"
    hidden(login(world.shop_admin).post(path, {"load__on": "on", "load__all_terminals": "on"}))
    denied(
        login(world.city_operator).post(path, {"load__on": "on", "load__all_terminals": "on"}),
        "権限がありません",
    )
    assert not OperatorScope.objects.exists()


# --- terminals ---


def test_terminal_pages_for_provider_admin(world, login):
    client = login(world.city_admin)
    response = client.post(
        "/accounts/terminals/new/",
        {"name": "窓口2", "location": "2F", "administrator": world.city_admin.pk, "is_active": "on"},
    )
    assert response.status_code == 302
    terminal = Terminal.objects.get(name="窓口2")
    assert terminal.provider == world.city
    response = client.post(
        f"/accounts/terminals/{terminal.pk}/",
        {"name": "窓口2", "location": "3F", "administrator": world.city_admin.pk, "is_active": "on"},
    )
    assert response.status_code == 302
    terminal.refresh_from_db()
    assert terminal.location == "3F"
    body = client.post(f"/accounts/terminals/{terminal.pk}/credential/", {"action": "issue"}).content.decode()
    token = body.split('data-testid="terminal-token">')[1].split("<")[0]
    from operators.services import authenticate_terminal

    assert authenticate_terminal(token) == terminal
    client.post(f"/accounts/terminals/{terminal.pk}/credential/", {"action": "revoke"})
    assert authenticate_terminal(token) is None
    listing = client.get("/accounts/terminals/").content.decode()
    assert "窓口2" in listing and "失効" in listing


def test_terminal_admin_sees_terminals_but_cannot_change(world, login, city_terminal):
    client = login(world.city_terminal_admin)
    assert "窓口1" in client.get("/accounts/terminals/").content.decode()
    denied(
        client.post(f"/accounts/terminals/{city_terminal.pk}/credential/", {"action": "issue"}),
        "権限がありません",
    )
    city_terminal.refresh_from_db()
    assert city_terminal.credential_hash is None


def test_terminal_pages_forbidden_and_other_provider(world, login, city_terminal):
    denied(login(world.city_operator).get("/accounts/terminals/"), "権限がありません")
    client = login(world.shop_admin)
    assert "窓口1" not in client.get("/accounts/terminals/").content.decode()
    hidden(client.get(f"/accounts/terminals/{city_terminal.pk}/"))
    hidden(client.post(f"/accounts/terminals/{city_terminal.pk}/credential/", {"action": "issue"}))
    city_terminal.refresh_from_db()
    assert city_terminal.credential_hash is None
    # Choosing another provider's person as administrator is refused by the form.
    response = client.post(
        "/accounts/terminals/new/", {"name": "x", "location": "y", "administrator": world.city_admin.pk}
    )
    assert "正しく選択してください" in response.content.decode()
    assert not Terminal.objects.filter(name="x").exists()


# --- dashboard ---


@pytest.mark.parametrize(
    "who, present, absent",
    [
        ("jlis", ["/admin/", "/accounts/audit/", "/accounts/roster/"], ["/accounts/people/"]),
        (
            "city_admin",
            ["/accounts/people/", "/accounts/terminals/", "/accounts/roster/"],
            ["/accounts/audit/", "/admin/"],
        ),
        ("city_operator", [], ["/accounts/people/", "/accounts/audit/", "/accounts/roster/", "/admin/"]),
        ("auditor", ["/accounts/audit/", "/accounts/roster/"], ["/accounts/people/", "/admin/"]),
    ],
)
def test_dashboard_links_fit_the_role(world, login, who, present, absent):
    body = login(getattr(world, who)).get("/").content.decode()
    for link in present:
        assert f'href="{link}"' in body, link
    for link in absent:
        assert f'href="{link}"' not in body, link


def test_username_like_an_individual_number_is_refused(world, login):
    response = login(world.city_admin).post(
        "/accounts/people/new/", {"username": "123456789012", "last_name": "x", "role": "operator"}
    )
    assert "11〜12桁の数字はユーザー名に使えません" in response.content.decode()
    assert not Operator.objects.filter(username="123456789012").exists()


def test_roster_csv_neutralises_formulas(world, login):
    world.city_operator.last_name = '=HYPERLINK("http://evil")'
    world.city_operator.save()
    body = login(world.city_admin).get("/accounts/roster.csv").getvalue().decode("utf-8-sig")
    assert "'=HYPERLINK" in body and ",=HYPERLINK" not in body and '"=HYPERLINK' not in body
