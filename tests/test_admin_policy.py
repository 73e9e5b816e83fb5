"""The admin under the one policy, walked generically: every registered model admin is audited or
read-only; every write (add, change, delete, password, every action including "delete selected")
needs a recently entered code; and whatever an admin write changes leaves an audit entry."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser, Group
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from cardap.models import AutoLoadPreset, FailureIncident, MaintenanceWindow, Provider
from operators.admin_site import AuditedAdmin, JLISAdminSite, ReadOnlyAdmin
from operators.models import AuditEntry, OperatorScope
from tests import factories

pytestmark = pytest.mark.django_db

# One instance per audited admin model, for the walk below (a new admin model needs a row here).
MAKERS = {
    "cardap.Provider": lambda w: Provider.objects.create(name="消す提供者", kind="private"),
    "cardap.CardAP": lambda w: factories.card_ap(w.city, "審査中AP", status="requested"),
    "cardap.CardAPShare": lambda w: factories.share(factories.card_ap(w.shop), w.city),
    "cardap.AutoLoadPreset": lambda w: AutoLoadPreset.objects.create(provider=w.city, name="セット"),
    "cardap.MaintenanceWindow": lambda w: MaintenanceWindow.objects.create(
        title="保守",
        starts_at=timezone.now() + dt.timedelta(days=30),
        ends_at=timezone.now() + dt.timedelta(days=30, hours=2),
    ),
    "cardap.FailureIncident": lambda w: FailureIncident.objects.create(
        provider=w.city, incident_key="k", summary="障害"
    ),
    "operators.Operator": lambda w: factories.operator("to_remove", "operator", w.city),
    "operators.Terminal": lambda w: factories.terminal(w.city, "窓口9", administrator=w.city_admin),
    "operators.OperatorScope": lambda w: OperatorScope.objects.create(
        operator=w.city_operator, operation="load"
    ),
    "otp_static.StaticDevice": lambda w: StaticDevice.objects.create(user=w.city_operator, name="backup"),
    "otp_totp.TOTPDevice": lambda w: TOTPDevice.objects.get(user=w.city_operator),
    "auth.Group": lambda w: Group.objects.create(name="係"),
}
SNAPSHOT_APPS = ("cardap", "operators", "otp_static", "otp_totp", "auth", "revocation", "loading")


def registered():
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def audited_labels():
    return sorted(m._meta.label for m, a in registered() if isinstance(a, AuditedAdmin))


def snapshot():
    """Every row of every model an admin write could touch (the audit log aside)."""
    state = {}
    for config in apps.get_app_configs():
        if config.label not in SNAPSHOT_APPS:
            continue
        for model in config.get_models():
            if model is AuditEntry:
                continue
            state[model._meta.label] = list(model._default_manager.order_by("pk").values())
    return state


def url(model, name, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{name}", args=args)


def stale(client):
    session = client.session
    session["operators.reauth_at"] = time.time() - 3600
    session.save()
    return client


def action_cases():
    cases = []
    for model, model_admin in registered():
        if isinstance(model_admin, AuditedAdmin):
            cases += [(model._meta.label, name) for name in ("delete_selected", *(model_admin.actions or []))]
    return cases


def test_the_site_is_the_jlis_site_set_by_the_admin_app_config():
    assert isinstance(admin.site, JLISAdminSite) and type(admin.site._wrapped) is JLISAdminSite
    assert admin.site.name == "admin"
    assert apps.get_app_config("admin").default_site == "operators.admin_site.JLISAdminSite"


def test_every_admin_is_audited_or_read_only(world):
    request = RequestFactory().get("/admin/")
    request.user = world.jlis
    for model, model_admin in registered():
        assert isinstance(model_admin, AuditedAdmin | ReadOnlyAdmin), model._meta.label
        if isinstance(model_admin, ReadOnlyAdmin):
            assert not model_admin.has_add_permission(request)
            assert not model_admin.has_change_permission(request)
            assert not model_admin.has_delete_permission(request)


def test_every_audited_admin_model_is_walked():
    assert audited_labels() == sorted(MAKERS)


@pytest.mark.parametrize("label", sorted(MAKERS))
def test_every_admin_write_needs_a_recent_code(world, login, label):
    model = apps.get_model(label)
    obj = MAKERS[label](world)
    client = stale(login(world.jlis))
    before, entries = snapshot(), AuditEntry.objects.count()
    posts = [url(model, "add"), url(model, "change", obj.pk), url(model, "delete", obj.pk)]
    if label == "operators.Operator":
        posts.append(reverse("admin:auth_user_password_change", args=[obj.pk]))
    for path in posts:
        response = client.post(path, {"post": "yes", "name": "x"})
        assert response.status_code == 302 and response["Location"].startswith("/accounts/reauth/"), path
    for _label, action in [c for c in action_cases() if c[0] == label]:
        response = client.post(
            url(model, "changelist"), {"action": action, "_selected_action": [obj.pk], "post": "yes"}
        )
        assert response.status_code == 302 and response["Location"].startswith("/accounts/reauth/"), action
    assert snapshot() == before
    assert AuditEntry.objects.count() == entries


@pytest.mark.parametrize(("label", "action"), action_cases())
def test_every_admin_action_audits_what_it_changes(world, login, label, action):
    model = apps.get_model(label)
    obj = MAKERS[label](world)
    client = login(world.jlis)
    before, entries = snapshot(), AuditEntry.objects.count()
    data = {"action": action, "_selected_action": [obj.pk], "post": "yes", "apply": "1", "reason": "記載不備"}
    response = client.post(url(model, "changelist"), data)
    assert response.status_code in (200, 302)
    if snapshot() != before:
        assert AuditEntry.objects.count() > entries, f"{label} {action} changed data unaudited"


@pytest.mark.parametrize("label", sorted(MAKERS))
def test_deleting_in_the_admin_is_audited(world, login, label):
    model = apps.get_model(label)
    obj = MAKERS[label](world)
    client = login(world.jlis)
    before = snapshot()
    response = client.post(url(model, "delete", obj.pk), {"post": "yes"})
    assert response.status_code in (200, 302)
    if snapshot() != before:
        assert AuditEntry.objects.filter(
            action=f"admin.{model._meta.model_name}.delete", target=f"{model._meta.model_name}:{obj.pk}"
        ).exists()


def test_bulk_delete_of_operators_terminals_and_scopes_is_audited(world, login):
    scope = OperatorScope.objects.create(operator=world.city_operator, operation="load")
    client = login(world.jlis)
    response = client.post(
        url(OperatorScope, "changelist"),
        {"action": "delete_selected", "_selected_action": [scope.pk], "post": "yes"},
    )
    assert response.status_code == 302 and not OperatorScope.objects.exists()
    entry = AuditEntry.objects.get(action="admin.operatorscope.delete")
    assert (
        entry.actor == "jlis" and entry.detail["bulk"] is True and entry.provider_id_snapshot == world.city.pk
    )


def test_setting_a_password_in_the_admin_is_audited(world, login):
    client = login(world.jlis)
    response = client.post(
        reverse("admin:auth_user_password_change", args=[world.city_operator.pk]),
        {
            "password1": "another-long-passphrase-77",
            "password2": "another-long-passphrase-77",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302
    world.city_operator.refresh_from_db()
    assert world.city_operator.check_password("another-long-passphrase-77")
    entry = AuditEntry.objects.get(action="admin.operator.password_set")
    assert (
        entry.target == f"operator:{world.city_operator.pk}" and entry.provider_id_snapshot == world.city.pk
    )
    assert "another-long" not in str(entry.detail)


def test_adding_backup_codes_for_someone_is_audited(world, login):
    client = login(world.jlis)
    response = client.post(
        url(StaticDevice, "add"),
        {
            "user": world.city_operator.pk,
            "name": "planted",
            "confirmed": "on",
            "token_set-TOTAL_FORMS": "1",
            "token_set-INITIAL_FORMS": "0",
            "token_set-0-token": "plant123",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    device = StaticDevice.objects.get(name="planted")
    assert StaticToken.objects.filter(device=device).exists()
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"admin.staticdevice.add", "admin.statictoken.add"} <= actions
    assert not AuditEntry.objects.filter(detail__icontains="plant123").exists()


def test_admin_login_page_is_not_a_second_sign_in_path(world):
    """Even if a request reached it unauthenticated, the admin's login never signs anyone in."""
    request = RequestFactory().post(
        "/admin/login/", {"username": "jlis", "password": factories.PASSWORD, "otp_token": "123456"}
    )
    request.user = AnonymousUser()
    request.session = SessionStore()
    response = admin.site.login(request)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert "_auth_user_id" not in request.session


def test_admin_login_sends_the_browser_to_the_operators_sign_in(world, client, login):
    response = client.get("/admin/login/?next=/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert login(world.jlis).get("/admin/login/?next=/admin/cardap/").url == "/admin/cardap/"
    assert login(world.jlis).get("/admin/login/?next=https://evil.example/").url == "/admin/"
    refused = login(world.city_admin).get("/admin/login/")
    assert refused.status_code == 403
    assert AuditEntry.objects.filter(action="permission.denied", actor="city_admin").exists()
