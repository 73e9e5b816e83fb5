"""operators.policy.card_ap_visibility (one plain statement, run on every provider pull) gives
exactly what the policy's querysets decide: card_aps_visible_to, split into the provider's own
card APs and the others with the first day of their relationship in force (shares_in_force)."""

from __future__ import annotations

import datetime as dt

import pytest

from cardap.models import CardAPShare
from operators import policy
from revocation import selectors
from tests import factories

pytestmark = pytest.mark.django_db


def from_querysets(provider, on):
    visible = policy.card_aps_visible_to(provider, on)
    owned = sorted(visible.filter(provider=provider).values_list("id", flat=True))
    starts: dict[int, dt.date] = {}
    for ap_id, since in (
        policy.shares_in_force(provider.pk, on)
        .filter(card_ap__in=visible)
        .exclude(card_ap_id__in=owned)
        .values_list("card_ap_id", "since")
    ):
        starts[ap_id] = min(since, starts.get(ap_id, since))
    return owned, starts


@pytest.fixture
def aps(world):
    city, shop = world.city, world.shop
    made = {
        "own": factories.card_ap(city, "自前"),
        "own_retired": factories.card_ap(city, "自前廃止", status="retired"),
        "own_requested": factories.card_ap(city, "自前申請中", status="requested"),
        "shared": factories.card_ap(shop, "共同"),
        "affiliated": factories.card_ap(shop, "利用"),
        "twice": factories.card_ap(shop, "二度"),
        "ended": factories.card_ap(shop, "終了"),
        "future": factories.card_ap(shop, "将来"),
        "shared_requested": factories.card_ap(shop, "共同申請中", status="requested"),
        "shared_retired": factories.card_ap(shop, "共同廃止", status="retired"),
        "not_shared": factories.card_ap(shop, "無関係"),
    }
    factories.share(made["shared"], city, CardAPShare.Role.SHARED, since=dt.date(2024, 4, 1))
    factories.share(made["affiliated"], city, CardAPShare.Role.AFFILIATE, since=dt.date(2025, 1, 1))
    factories.share(
        made["twice"], city, CardAPShare.Role.SHARED, since=dt.date(2023, 1, 1), until=dt.date(2030, 1, 1)
    )
    factories.share(made["twice"], city, CardAPShare.Role.AFFILIATE, since=dt.date(2022, 6, 1))
    factories.share(made["ended"], city, CardAPShare.Role.SHARED, until=dt.date(2021, 1, 1))
    factories.share(made["future"], city, CardAPShare.Role.SHARED, since=dt.date(2999, 1, 1))
    factories.share(made["shared_requested"], city, CardAPShare.Role.SHARED)
    factories.share(made["shared_retired"], city, CardAPShare.Role.SHARED, since=dt.date(2021, 3, 3))
    factories.share(made["own"], world.shop, CardAPShare.Role.AFFILIATE, since=dt.date(2020, 2, 2))
    return made


@pytest.mark.parametrize(
    "on",
    [
        dt.date(2020, 12, 31),
        dt.date(2021, 1, 1),
        dt.date(2024, 4, 1),
        dt.date(2026, 12, 2),
        dt.date(2999, 1, 1),
    ],
)
def test_the_plain_statement_matches_the_policy_querysets(world, aps, on):
    for provider in (world.city, world.shop):
        assert policy.card_ap_visibility(provider.pk, on) == from_querysets(provider, on)


def test_what_the_city_sees_today(world, aps):
    owned, starts = policy.card_ap_visibility(world.city.pk, dt.date(2026, 12, 2))
    assert owned == sorted([aps["own"].pk, aps["own_retired"].pk])
    assert starts == {
        aps["shared"].pk: dt.date(2024, 4, 1),
        aps["affiliated"].pk: dt.date(2025, 1, 1),
        aps["twice"].pk: dt.date(2022, 6, 1),  # the earliest relationship in force
        aps["shared_retired"].pk: dt.date(2021, 3, 3),
    }


def test_the_feed_scope_is_built_from_it(world, aps):
    scope = selectors.scope_for(world.shop, today=dt.date(2026, 12, 2))
    assert aps["own"].pk in dict(scope.shared) and aps["not_shared"].pk in scope.owned
    assert not set(scope.owned) & set(dict(scope.shared))
