"""Reads, always scoped to the caller: nobody sees another provider's people, terminals or log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from operators.models import AuditEntry, Operator, OperatorScope, Terminal
from operators.policy import can_read_audit, can_read_roster, is_jlis, may_access_provider, principal_of


def providers_for(user: Any) -> QuerySet[Any]:
    """Providers whose operators, terminals and roster the caller may see (read)."""
    providers = apps.get_model("cardap", "Provider").objects.all()
    if may_access_provider(user, None, read=True):
        return providers
    p = principal_of(user)
    return providers.filter(pk=p.provider_id) if p.provider_id is not None else providers.none()


def operators_for(user: Any) -> QuerySet[Operator]:
    if not user.is_authenticated:
        return Operator.objects.none()
    if is_jlis(user):
        return Operator.objects.all()
    if user.provider_id is None:
        return Operator.objects.filter(pk=user.pk)
    return Operator.objects.filter(provider_id=user.provider_id)


def terminals_for(user: Any) -> QuerySet[Terminal]:
    if not user.is_authenticated:
        return Terminal.objects.none()
    return Terminal.objects.filter(provider__in=providers_for(user)).select_related(
        "administrator", "provider"
    )


def audit_entries_for(
    user: Any,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    actor: str = "",
    action: str = "",
    text: str = "",
) -> QuerySet[AuditEntry]:
    """Audit entries the caller may read, filtered; dates are Japan calendar days, inclusive."""
    if not can_read_audit(user):
        return AuditEntry.objects.none()
    qs = AuditEntry.objects.all()
    if not is_jlis(user) and user.provider_id is not None:
        qs = qs.filter(provider_id_snapshot=user.provider_id)
    japan = timezone.get_default_timezone()
    if date_from:
        qs = qs.filter(at__gte=dt.datetime.combine(date_from, dt.time.min, tzinfo=japan))
    if date_to:
        qs = qs.filter(at__lt=dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time.min, tzinfo=japan))
    if actor:
        qs = qs.filter(actor__iexact=actor.strip())
    if action:
        qs = qs.filter(action__startswith=action.strip())
    if text:
        t = text.strip()
        qs = qs.filter(
            Q(target__icontains=t) | Q(detail__icontains=t) | Q(action__icontains=t) | Q(ip__startswith=t)
        )
    return qs.order_by("-id")


@dataclass
class RosterRow:
    operator: Operator
    scopes: list[OperatorScope] = field(default_factory=list)
    administered: list[Terminal] = field(default_factory=list)


def roster_for(user: Any, provider: Any) -> list[RosterRow]:
    """The provider's people with operating rights (名簿, R2.3), or nothing if the caller may not
    see that provider."""
    if not can_read_roster(user) or not providers_for(user).filter(pk=provider.pk).exists():
        return []
    people = (
        Operator.objects.filter(provider=provider)
        .order_by("role", "username")
        .prefetch_related(
            Prefetch(
                "scopes",
                queryset=OperatorScope.objects.prefetch_related("terminals", "card_aps").order_by(
                    "operation"
                ),
            ),
            Prefetch("administered_terminals", queryset=Terminal.objects.order_by("name")),
        )
    )
    return [RosterRow(p, in_form_order(p.scopes.all()), list(p.administered_terminals.all())) for p in people]


def in_form_order(scopes: Any) -> list[OperatorScope]:
    """Permitted operations in the order of the form and the model (搭載, 削除, 障害診断, 転入処理)."""
    from operators.models import Operation

    order = {value: i for i, value in enumerate(Operation.values)}
    return sorted(scopes, key=lambda s: order.get(s.operation, len(order)))


def people_page(user: Any) -> list[Operator]:
    """The operators list: each person with `enrolled` (a confirmed authenticator) and
    `ordered_scopes` in the order of the form (搭載, 削除, 障害診断, 転入処理)."""
    from django.db.models import Exists, OuterRef
    from django_otp.plugins.otp_totp.models import TOTPDevice

    people: list[Operator] = list(
        operators_for(user)
        .annotate(enrolled=Exists(TOTPDevice.objects.filter(user=OuterRef("pk"), confirmed=True)))
        .prefetch_related("scopes")
        .order_by("role", "username")
    )
    for person in people:
        person.ordered_scopes = in_form_order(person.scopes.all())  # type: ignore[attr-defined]
    return people
