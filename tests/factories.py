"""The one set of factories for the shared test world: card APs (any status, area, type), usage
relationships, terminals and operators. Rows are written straight to the database (no
manufacture); tests of the registry's own rules go through its services instead."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from django_otp.plugins.otp_totp.models import TOTPDevice

from cardap.models import CardAP, CardAPShare, Provider
from operators.models import Operator, Terminal

PASSWORD = "correct-horse-battery-42"
_serial = itertools.count(0x7F000000)


def card_ap(
    provider: Provider,
    name: str | None = None,
    *,
    type: str = "C",
    area: str = "extended",
    status: str = CardAP.Status.APPROVED,
    **fields: Any,
) -> CardAP:
    """A card AP of `provider`; approved ones get a serial and an AID of their area."""
    serial = next(_serial)
    if status in (CardAP.Status.APPROVED, CardAP.Status.RETIRED):
        fields.setdefault("aid", f"D392F1{'01' if area == 'local' else '02'}{serial:08X}")
        fields.setdefault("serial", serial)
    return CardAP.objects.create(
        provider=provider, name=name or f"AP-{serial:X}", type=type, area=area, status=status, **fields
    )


def share(
    ap: CardAP,
    provider: Provider,
    role: str = CardAPShare.Role.SHARED,
    *,
    since: dt.date | None = None,
    until: dt.date | None = None,
) -> CardAPShare:
    return CardAPShare.objects.create(
        card_ap=ap, provider=provider, role=role, since=since or dt.date(2020, 1, 1), until=until
    )


def terminal(provider: Provider, name: str, *, administrator: Operator, location: str = "1F") -> Terminal:
    return Terminal.objects.create(
        provider=provider, name=name, location=location, administrator=administrator
    )


def operator(username: str, role: str, provider: Provider | None, *, totp: bool = True) -> Operator:
    user = Operator.objects.create_user(
        username=username, password=PASSWORD, role=role, provider=provider, is_staff=role == "jlis_staff"
    )
    if totp:
        TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    return user
