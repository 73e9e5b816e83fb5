"""Reads of the registry, always scoped to the caller's provider.

`can_operate` and `operators.policy.card_aps_loadable_by` are what loading calls before it loads
or deletes; which card APs a provider may load or see is decided there, once.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet
from django.utils import timezone

from cardap.models import AutoLoadPreset, CardAP, Provider
from operators import policy


def today() -> dt.date:
    return timezone.localdate()


def can_operate(provider: Provider | None) -> bool:
    """Only live providers' operators may load or delete card APs (R10)."""
    return provider is not None and provider.status == Provider.Status.LIVE


def requests_for(provider: Provider) -> QuerySet[CardAP]:
    """The provider's own registration requests and card APs (it is their representative)."""
    return CardAP.objects.filter(provider=provider).order_by("-created_at")


def relationship(card_ap: CardAP, provider: Provider, on: dt.date | None = None) -> str:
    """ "representative", "shared" or "affiliate": how `provider` relates to `card_ap`."""
    if card_ap.provider_id == provider.pk:
        return "representative"
    share = policy.shares_in_force(provider.pk, on).filter(card_ap=card_ap).first()
    return share.role if share else ""


def presets_for(provider: Provider) -> QuerySet[AutoLoadPreset]:
    return AutoLoadPreset.objects.filter(provider=provider).prefetch_related("items__card_ap")
