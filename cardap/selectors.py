"""Reads of the registry, always scoped to the caller's provider.

`can_operate` and `loadable_card_aps` are what loading calls before it loads or deletes.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet
from django.utils import timezone

from cardap.models import AutoLoadPreset, CardAP, CardAPShare, Provider


def today() -> dt.date:
    return timezone.localdate()


def can_operate(provider: Provider | None) -> bool:
    """Only live providers' operators may load or delete card APs (R10)."""
    return provider is not None and provider.status == Provider.Status.LIVE


def requests_for(provider: Provider) -> QuerySet[CardAP]:
    """The provider's own registration requests and card APs (it is their representative)."""
    return CardAP.objects.filter(provider=provider).order_by("-created_at")


def get_request(provider: Provider, pk: int) -> CardAP:
    """One of the provider's requests; another provider's raises DoesNotExist (a 404, not a 403)."""
    return requests_for(provider).get(pk=pk)


def active_shares(provider: Provider, on: dt.date | None = None) -> QuerySet[CardAPShare]:
    on = on or today()
    return CardAPShare.objects.filter(provider=provider, since__lte=on).filter(
        Q(until__isnull=True) | Q(until__gte=on)
    )


def loadable_card_aps(provider: Provider, on: dt.date | None = None) -> QuerySet[CardAP]:
    """Approved card APs this provider's terminals may load or delete (R1.2, R3.4):
    its own, and those it shares as co-provider; affiliates only use an AP, never load it.
    Local-resident area APs only for a municipality that is their representative."""
    shared_ids = active_shares(provider, on).filter(role=CardAPShare.Role.SHARED).values("card_ap_id")
    qs = CardAP.objects.filter(status=CardAP.Status.APPROVED).filter(
        Q(provider=provider) | Q(pk__in=shared_ids)
    )
    if not provider.is_municipality:
        qs = qs.exclude(area=CardAP.Area.LOCAL)
    else:
        qs = qs.exclude(~Q(provider=provider), area=CardAP.Area.LOCAL)
    return qs.order_by("name")


def visible_card_aps(provider: Provider, on: dt.date | None = None) -> QuerySet[CardAP]:
    """Card APs a provider's business system may know about (API): its own (approved or retired,
    cards may still carry them) and those it shares or uses as an affiliate."""
    shared_ids = active_shares(provider, on).values("card_ap_id")
    return (
        CardAP.objects.filter(status__in=[CardAP.Status.APPROVED, CardAP.Status.RETIRED])
        .filter(Q(provider=provider) | Q(pk__in=shared_ids))
        .select_related("provider")
        .order_by("aid")
    )


def relationship(card_ap: CardAP, provider: Provider, on: dt.date | None = None) -> str:
    """ "representative", "shared" or "affiliate": how `provider` relates to `card_ap`."""
    if card_ap.provider_id == provider.pk:
        return "representative"
    share = active_shares(provider, on).filter(card_ap=card_ap).first()
    return share.role if share else ""


def presets_for(provider: Provider) -> QuerySet[AutoLoadPreset]:
    return AutoLoadPreset.objects.filter(provider=provider).prefetch_related("items__card_ap")
