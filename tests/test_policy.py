"""The one access policy (operators.policy): the principal, the card AP rules, and that every
refusal, in every app, answers the same way and leaves the same audit entry."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from cardap import services as registry
from cardap.apikeys import issue_key
from cardap.models import AutoLoadPreset, CardAP, CardAPShare
from operators import policy
from operators.models import AuditEntry
from tests import factories

pytestmark = pytest.mark.django_db


def refusals(**filters):
    return AuditEntry.objects.filter(action="permission.denied", **filters)


def last_refusal():
    return refusals().order_by("-id").first()


# --- the principal --------------------------------------------------------------------------------


def test_principal_of_each_kind_of_caller(world):
    operator = policy.principal_of(world.city_operator)
    assert (operator.kind, operator.provider_id, operator.role) == ("operator", world.city.pk, "operator")
    assert policy.principal_of(world.jlis).provider_id is None and policy.is_jlis(world.jlis)
    terminal = factories.terminal(world.city, "T", administrator=world.city_admin)
    as_terminal = policy.principal_of(terminal)
    assert as_terminal.kind == "terminal" and as_terminal.operator == world.city_admin
    key, _token = issue_key(provider=world.shop, name="k")
    from cardap.apikeys import ProviderClient

    client = policy.principal_of(ProviderClient(provider=world.shop, key=key))
    assert (client.kind, client.provider_id, client.name) == (
        "api_client",
        world.shop.pk,
        f"api:{key.prefix}",
    )
    assert policy.principal_of(None).kind == "anonymous" and not policy.principal_of(None).is_authenticated
    assert policy.SYSTEM.kind == "system" and policy.may_access_provider(policy.SYSTEM, world.shop.pk)


def test_tenant_restriction(world):
    assert policy.may_access_provider(world.city_admin, world.city.pk)
    assert not policy.may_access_provider(world.city_admin, world.shop.pk)
    assert policy.may_access_provider(world.jlis, world.shop.pk)
    # An auditor not tied to a provider reads everyone, and changes nobody's.
    assert policy.may_access_provider(world.auditor, world.shop.pk, read=True)
    assert not policy.may_access_provider(world.auditor, world.shop.pk)
    assert not policy.may_access_provider(world.city_auditor, world.shop.pk, read=True)


# --- which card APs a provider may load / see ------------------------------------------------------


def test_may_load_is_own_or_co_provided_and_may_see_adds_affiliated_in_force(world):
    own = factories.card_ap(world.city, "自前")
    shared = factories.card_ap(world.shop, "共同")
    affiliated = factories.card_ap(world.shop, "利用")
    ended = factories.card_ap(world.shop, "終了")
    future = factories.card_ap(world.shop, "将来")
    requested = factories.card_ap(world.city, "申請中", status="requested")
    factories.share(shared, world.city, CardAPShare.Role.SHARED)
    factories.share(affiliated, world.city, CardAPShare.Role.AFFILIATE)
    factories.share(ended, world.city, CardAPShare.Role.SHARED, until=dt.date(2021, 1, 1))
    factories.share(future, world.city, CardAPShare.Role.SHARED, since=dt.date(2999, 1, 1))
    assert set(policy.card_aps_loadable_by(world.city)) == {own, shared}
    assert set(policy.card_aps_visible_to(world.city)) == {own, shared, affiliated}
    assert requested not in policy.card_aps_visible_to(world.city)
    assert set(policy.card_aps_loadable_by(world.shop)) == {shared, affiliated, ended, future}


def test_local_area_card_aps_are_loaded_only_by_their_own_municipality(world):
    local = factories.card_ap(world.shop, "地域", area="local")
    assert local not in policy.card_aps_loadable_by(world.shop)  # a private business
    city_local = factories.card_ap(world.city, "市の地域", area="local")
    factories.share(city_local, world.shop, CardAPShare.Role.SHARED)
    assert city_local in policy.card_aps_loadable_by(world.city)
    assert city_local not in policy.card_aps_loadable_by(world.shop)


def test_check_scope_refusals_are_audited_and_has_scope_audits_nothing(world):
    with pytest.raises(PermissionDenied):
        policy.check_scope(world.city_operator, operation="load")
    entry = last_refusal()
    assert entry.detail["reason"] == "scope" and entry.provider_id_snapshot == world.city.pk
    count = refusals().count()
    assert not policy.has_scope(world.city_operator, operation="load")
    assert refusals().count() == count


# --- every refusal audited the same way, in every app ---------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/registry/requests/", "/registry/presets/", "/revocation/", "/revocation/keys/", "/accounts/people/"],
)
def test_forbidden_role_is_an_audited_403_in_every_app(world, login, path):
    response = login(world.city_operator).get(path)
    assert response.status_code == 403
    entry = last_refusal()
    assert (entry.actor, entry.target, entry.detail["reason"], entry.detail["status"]) == (
        "city_op",
        path,
        "role",
        403,
    )


def test_other_providers_objects_are_audited_404s_in_every_app(world, login):
    ap = registry.submit_request(provider=world.city, actor=world.city_admin, **_request())
    preset = AutoLoadPreset.objects.create(provider=world.city, name="市のセット")
    key, _token = issue_key(provider=world.city, name="市のキー")
    terminal = factories.terminal(world.city, "窓口", administrator=world.city_admin)
    shop = login(world.shop_admin)
    for method, path in [
        ("get", f"/registry/requests/{ap.pk}/"),
        ("get", f"/registry/presets/{preset.pk}/"),
        ("post", f"/registry/presets/{preset.pk}/delete/"),
        ("post", f"/revocation/keys/{key.pk}/revoke/"),
        ("get", f"/accounts/people/{world.city_operator.pk}/"),
        ("get", f"/accounts/terminals/{terminal.pk}/"),
    ]:
        response = getattr(shop, method)(path)
        assert response.status_code == 404, path
        entry = last_refusal()
        assert (entry.actor, entry.target, entry.detail["reason"]) == ("shop_admin", path, "other_provider")
    assert AutoLoadPreset.objects.filter(pk=preset.pk).exists()
    key.refresh_from_db()
    assert key.revoked_at is None


def test_another_providers_card_ap_over_the_api_is_an_audited_404(world):
    ap = factories.card_ap(world.city, "市のAP")
    _key, token = issue_key(provider=world.shop, name="k")
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert api.get(f"/api/v1/card-aps/{ap.aid}/").status_code == 404
    entry = last_refusal()
    assert entry.actor.startswith("api:") and entry.provider_id_snapshot == world.shop.pk
    assert entry.detail["reason"] == "not_visible"


def test_a_forged_id_in_a_form_is_refused_and_audited(world, login):
    foreign = factories.card_ap(world.shop, "他社AP")
    response = login(world.city_admin).post(
        "/registry/presets/new/", {"name": "セット", "card_aps": [foreign.pk]}
    )
    assert response.status_code == 400 and not AutoLoadPreset.objects.exists()
    entry = last_refusal()
    assert entry.detail == {"reason": "forged_choice", "status": 400, "fields": "card_aps"}


# --- admin actions: precise reports, no 500 on a race ---------------------------------------------


def test_retire_selected_does_not_report_success_when_nothing_was_retired(world, login):
    requested = factories.card_ap(world.city, "審査中", status="requested")
    response = login(world.jlis).post(
        "/admin/cardap/cardap/",
        {"action": "retire_selected", "_selected_action": [requested.pk]},
        follow=True,
    )
    body = response.content.decode()
    assert "廃止しました" not in body and "廃止できるカードAP（承認済）が選ばれていません" in body
    requested.refresh_from_db()
    assert requested.status == CardAP.Status.REQUESTED


def test_retire_selected_counts_what_it_retired(world, login):
    aps = [factories.card_ap(world.city, f"廃止{i}") for i in range(2)]
    response = login(world.jlis).post(
        "/admin/cardap/cardap/",
        {"action": "retire_selected", "_selected_action": [ap.pk for ap in aps]},
        follow=True,
    )
    assert "2件を廃止しました" in response.content.decode()
    assert AuditEntry.objects.filter(action="card_ap.retired").count() == 2


def test_reject_selected_when_another_reviewer_got_there_first(world, login, monkeypatch):
    ap = registry.submit_request(provider=world.city, actor=world.city_admin, **_request())
    real = registry.reject_request

    def reviewed_meanwhile(**kwargs):
        # Another J-LIS staff member rejects it between the list and this action.
        CardAP.objects.filter(pk=kwargs["card_ap_id"]).update(status=CardAP.Status.REJECTED)
        return real(**kwargs)

    monkeypatch.setattr(registry, "reject_request", reviewed_meanwhile)
    response = login(world.jlis).post(
        "/admin/cardap/cardap/",
        {"action": "reject_selected", "_selected_action": [ap.pk], "apply": "1", "reason": "記載不備"},
        follow=True,
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "却下できません" in body and "件を却下しました" not in body
    assert not AuditEntry.objects.filter(action="card_ap.rejected").exists()


def _request():
    from tests.registry_helpers import request_fields

    return request_fields()


def test_a_task_refusal_is_audited_as_the_system():
    @policy.system_task
    def job(card_ap_id: int) -> None:
        raise PermissionDenied("not now")

    with pytest.raises(PermissionDenied):
        job(1)
    entry = last_refusal()
    assert (entry.actor, entry.detail["reason"], entry.detail["task"]) == ("system", "task", "job")
