"""Providers' onboarding state machine and usage relationships (R10, R3.4), presets (R4.2)."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from cardap import selectors, services
from cardap.models import AutoLoadPreset, CardAPShare, Provider
from operators import policy
from operators.models import AuditEntry
from tests import factories


def new_provider(kind, name="新規提供者"):
    return Provider.objects.create(
        name=name, kind=kind, local_gov_code="011002" if kind == "municipality" else ""
    )


@pytest.mark.django_db
def test_private_business_goes_live_only_through_minister_confirmation_and_contract(world):
    p = new_provider(Provider.Kind.PRIVATE)
    assert not selectors.can_operate(p)
    with pytest.raises(
        ValidationError, match="「申請中」から「運用中」へは変更できません（変更可能: 法的根拠確認済、終了）"
    ):
        services.transition_provider(provider=p, to="live", actor=world.jlis)
    with pytest.raises(ValidationError, match="法基準適合性確認"):
        services.transition_provider(
            provider=p,
            to="legal_confirmed",
            actor=world.jlis,
            legal_basis_kind="ordinance",
            legal_basis_reference="x",
            legal_basis_date=dt.date(2027, 1, 5),
        )
    with pytest.raises(ValidationError, match="日付"):
        services.transition_provider(
            provider=p,
            to="legal_confirmed",
            actor=world.jlis,
            legal_basis_kind="minister_confirmation",
            legal_basis_reference="総情第1号",
        )
    p.refresh_from_db()
    assert p.status == "applied" and p.legal_basis_kind == ""
    services.transition_provider(
        provider=p,
        to="legal_confirmed",
        actor=world.jlis,
        legal_basis_kind="minister_confirmation",
        legal_basis_reference="総情第1号",
        legal_basis_date=dt.date(2027, 1, 5),
    )
    with pytest.raises(ValidationError, match="契約番号"):
        services.transition_provider(provider=p, to="contracted", actor=world.jlis)
    services.transition_provider(provider=p, to="contracted", actor=world.jlis, contract_reference="C-2027-1")
    services.transition_provider(provider=p, to="live", actor=world.jlis)
    p.refresh_from_db()
    assert p.status == "live" and selectors.can_operate(p)
    assert p.legal_basis_date == dt.date(2027, 1, 5)
    moves = [
        e.detail["to"] for e in AuditEntry.objects.filter(action="provider.status", provider_id_snapshot=p.pk)
    ]
    assert moves == ["legal_confirmed", "contracted", "live"]


@pytest.mark.django_db
def test_municipality_needs_an_ordinance_and_suspension_stops_operations(world):
    p = new_provider(Provider.Kind.MUNICIPALITY)
    with pytest.raises(ValidationError, match="条例"):
        services.transition_provider(
            provider=p,
            to="legal_confirmed",
            actor=world.jlis,
            legal_basis_kind="minister_confirmation",
            legal_basis_reference="x",
            legal_basis_date=dt.date(2027, 1, 1),
        )
    services.transition_provider(
        provider=p,
        to="legal_confirmed",
        actor=world.jlis,
        legal_basis_kind="ordinance",
        legal_basis_reference="新規市個人番号カード利用条例",
        legal_basis_date=dt.date(2027, 1, 1),
    )
    services.transition_provider(provider=p, to="contracted", actor=world.jlis, contract_reference="C-1")
    services.transition_provider(provider=p, to="live", actor=world.jlis)
    services.transition_provider(provider=p, to="suspended", actor=world.jlis)
    p.refresh_from_db()
    assert not selectors.can_operate(p)
    with pytest.raises(ValidationError, match="運用中ではない"):
        services.ensure_can_operate(p)
    services.transition_provider(provider=p, to="ended", actor=world.jlis)
    with pytest.raises(ValidationError, match="変更可能: なし"):
        services.transition_provider(provider=p, to="live", actor=world.jlis)


@pytest.mark.django_db
def test_usage_patterns_shared_loads_affiliate_only_uses(world):
    ap = factories.card_ap(world.city, "市の広域AP")
    other = new_provider(Provider.Kind.PRIVATE, "加盟店")
    other.status = "live"
    other.save()
    services.add_share(
        card_ap=ap, provider=world.shop, role="shared", since=dt.date(2020, 1, 1), actor=world.jlis
    )
    services.add_share(
        card_ap=ap, provider=other, role="affiliate", since=dt.date(2020, 1, 1), actor=world.jlis
    )
    assert ap in policy.card_aps_loadable_by(world.shop)
    assert ap not in policy.card_aps_loadable_by(other)
    assert ap in policy.card_aps_visible_to(other)
    assert selectors.relationship(ap, other) == "affiliate"
    with pytest.raises(ValidationError, match="既に登録"):
        services.add_share(
            card_ap=ap, provider=other, role="shared", since=dt.date(2021, 1, 1), actor=world.jlis
        )
    share = CardAPShare.objects.get(provider=world.shop)
    services.end_share(share=share, until=dt.date(2021, 1, 1), actor=world.jlis)
    assert ap not in policy.card_aps_loadable_by(world.shop)
    assert AuditEntry.objects.filter(action__startswith="card_ap.share_").count() == 3


@pytest.mark.django_db
def test_local_area_ap_is_never_shared_nor_loadable_by_others(world):
    local = factories.card_ap(world.city, "住民向けAP", area="local")
    with pytest.raises(ValidationError, match="地域住民向け領域"):
        services.add_share(
            card_ap=local, provider=world.shop, role="shared", since=dt.date(2020, 1, 1), actor=world.jlis
        )
    with pytest.raises(ValidationError, match="代表提供者自身"):
        services.add_share(
            card_ap=local, provider=world.city, role="affiliate", since=dt.date(2020, 1, 1), actor=world.jlis
        )
    assert local in policy.card_aps_loadable_by(world.city)
    assert local not in policy.card_aps_loadable_by(world.shop)


@pytest.mark.django_db
def test_presets_only_hold_loadable_aps(world):
    mine = factories.card_ap(world.shop, "店舗AP")
    city_local = factories.card_ap(world.city, "市の住民向けAP", area="local")
    preset = services.save_preset(provider=world.shop, name="標準", card_aps=[mine], actor=world.shop_admin)
    assert preset.ordered_card_aps() == [mine]
    with pytest.raises(ValidationError, match="市の住民向けAP"):
        services.save_preset(
            provider=world.shop, name="不正", card_aps=[mine, city_local], actor=world.shop_admin
        )
    with pytest.raises(ValidationError, match="同じ名称"):
        services.save_preset(provider=world.shop, name="標準", card_aps=[mine], actor=world.shop_admin)
    assert AutoLoadPreset.objects.filter(provider=world.shop).count() == 1
