"""The single server-side scope check (操作可能範囲, R2.2) and caller-scoped selectors."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from cardap.models import CardAPShare, Provider
from operators import selectors, services
from operators.models import AuditEntry, Operation, OperatorScope, Terminal
from operators.policy import check_scope, has_scope
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def kit(world):
    t1 = Terminal.objects.create(
        provider=world.city, name="T1", location="1F", administrator=world.city_admin
    )
    t2 = Terminal.objects.create(
        provider=world.city, name="T2", location="2F", administrator=world.city_admin
    )
    shop_t = Terminal.objects.create(
        provider=world.shop, name="S1", location="店", administrator=world.shop_admin
    )
    ap1 = factories.card_ap(world.city, "図書館", type="A", area="local")
    ap2 = factories.card_ap(world.city, "健診", type="C", area="extended")
    shop_ap = factories.card_ap(world.shop, "ポイント", type="C", area="extended")
    return t1, t2, shop_t, ap1, ap2, shop_ap


def grant(operator, operation, terminals=(), card_aps=(), all_terminals=False, all_card_aps=False):
    scope = OperatorScope.objects.create(
        operator=operator, operation=operation, all_terminals=all_terminals, all_card_aps=all_card_aps
    )
    scope.terminals.set(terminals)
    scope.card_aps.set(card_aps)
    return scope


def refused(operator, match, **kwargs):
    with pytest.raises(PermissionDenied, match=match):
        check_scope(operator, **kwargs)


def test_nothing_is_allowed_without_a_grant(world, kit):
    t1, _, _, ap1, _, _ = kit
    refused(world.city_operator, "「搭載」の操作権限がありません", operation="load", terminal=t1, card_ap=ap1)


def test_grant_on_listed_terminals_and_card_aps_only(world, kit):
    t1, t2, _, ap1, ap2, _ = kit
    grant(world.city_operator, Operation.LOAD, terminals=[t1], card_aps=[ap1])
    assert check_scope(world.city_operator, operation="load", terminal=t1, card_ap=ap1).operation == "load"
    refused(
        world.city_operator,
        "端末「T2」で「搭載」を行う権限がありません",
        operation="load",
        terminal=t2,
        card_ap=ap1,
    )
    refused(
        world.city_operator,
        "カードAP「健診」について「搭載」を行う権限がありません",
        operation="load",
        terminal=t1,
        card_ap=ap2,
    )
    refused(
        world.city_operator, "「削除」の操作権限がありません", operation="delete", terminal=t1, card_ap=ap1
    )


def test_all_flags_cover_everything_of_the_own_provider_only(world, kit):
    t1, t2, shop_t, ap1, ap2, shop_ap = kit
    grant(world.city_operator, Operation.DIAGNOSE, all_terminals=True, all_card_aps=True)
    assert has_scope(world.city_operator, operation="diagnose", terminal=t2, card_ap=ap2)
    refused(
        world.city_operator, "他のサービス提供者の端末は使用できません", operation="diagnose", terminal=shop_t
    )
    refused(
        world.city_operator,
        "カードAP「ポイント」はこのサービス提供者では扱えません",
        operation="diagnose",
        card_ap=shop_ap,
    )


def test_shared_card_ap_is_usable_affiliate_is_not(world, kit):
    _, _, shop_t, _, _, shop_ap = kit
    grant(world.city_operator, Operation.LOAD, all_terminals=True, all_card_aps=True)
    share = CardAPShare.objects.create(
        card_ap=shop_ap, provider=world.city, role="affiliate", since=dt.date(2020, 1, 1)
    )
    assert not has_scope(world.city_operator, operation="load", card_ap=shop_ap)
    share.role = "shared"
    share.save()
    assert has_scope(world.city_operator, operation="load", card_ap=shop_ap)
    share.until = dt.date(2021, 1, 1)
    share.save()
    assert not has_scope(world.city_operator, operation="load", card_ap=shop_ap)


def test_roles_that_never_operate(world, kit):
    t1, *_ = kit
    for user in (world.jlis, world.auditor):
        refused(user, "この役割ではカードの操作はできません", operation="load", terminal=t1)


def test_inactive_operator_terminal_or_provider(world, kit):
    t1, _, _, ap1, _, _ = kit
    grant(world.city_operator, Operation.LOAD, all_terminals=True, all_card_aps=True)
    t1.is_active = False
    t1.save()
    refused(world.city_operator, "端末「T1」は無効です", operation="load", terminal=t1)
    Provider.objects.filter(pk=world.city.pk).update(status=Provider.Status.SUSPENDED)
    world.city_operator.refresh_from_db()
    refused(world.city_operator, "運用中ではない", operation="load", card_ap=ap1)
    world.city_operator.is_active = False
    refused(world.city_operator, "このアカウントは無効です", operation="load")


def test_unapproved_card_ap_is_refused(world, kit):
    grant(world.city_operator, Operation.LOAD, all_terminals=True, all_card_aps=True)
    pending = factories.card_ap(world.city, "申請中AP", type="A", area="local", status="requested")
    refused(world.city_operator, "扱えません", operation="load", card_ap=pending)


def test_unknown_operation(world):
    refused(world.city_operator, "不明な操作です", operation="format_card")


def test_set_scopes_service_audits_and_refuses_foreign_objects(world, kit):
    t1, _, shop_t, ap1, _, shop_ap = kit
    services.set_scopes(
        actor=world.city_admin,
        operator=world.city_operator,
        grants={"load": {"terminals": [t1.pk], "card_aps": [ap1.pk]}},
    )
    entry = AuditEntry.objects.get(action="operator.permission_change")
    assert entry.detail["scopes"]["after"] == {"load": {"terminals": ["T1"], "card_aps": ["図書館"]}}
    assert entry.actor == "city_admin" and entry.target == "city_op"
    for bad in ({"load": {"terminals": [shop_t.pk]}}, {"load": {"card_aps": [shop_ap.pk]}}):
        with pytest.raises(ValidationError):
            services.set_scopes(actor=world.city_admin, operator=world.city_operator, grants=bad)
    assert services.describe_scopes(world.city_operator) == {
        "load": {"terminals": ["T1"], "card_aps": ["図書館"]}
    }


def test_set_scopes_by_other_provider_admin_is_refused_and_audited(world, kit):
    with pytest.raises(PermissionDenied, match="他のサービス提供者"):
        services.set_scopes(
            actor=world.shop_admin,
            operator=world.city_operator,
            grants={"load": {"all_terminals": True, "all_card_aps": True}},
        )
    assert not OperatorScope.objects.exists()
    denied = AuditEntry.objects.get(action="permission.denied")
    assert denied.actor == "shop_admin" and denied.target == "city_op"


def test_selectors_are_scoped_to_the_callers_provider(world, kit):
    t1, t2, shop_t, *_ = kit
    city_people = {world.city_admin, world.city_operator, world.city_terminal_admin, world.city_auditor}
    assert set(selectors.operators_for(world.city_admin)) == city_people
    assert set(selectors.operators_for(world.shop_operator)) == {world.shop_admin, world.shop_operator}
    assert selectors.operators_for(world.jlis).count() == 8
    assert set(selectors.terminals_for(world.city_operator)) == {t1, t2}
    assert set(selectors.terminals_for(world.shop_admin)) == {shop_t}
    assert selectors.terminals_for(world.jlis).count() == 3
    assert selectors.terminals_for(world.auditor).count() == 3  # J-LIS-side auditor: every provider
    assert set(selectors.terminals_for(world.city_auditor)) == {t1, t2}  # an auditor of one provider
