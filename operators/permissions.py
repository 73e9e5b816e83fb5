"""The one server-side permission check for card operations (操作可能範囲, R2.2), plus role tests.

Views, the agent endpoint and Celery tasks all call `check_scope` before touching a card; it
raises PermissionDenied with a message an operator can act on."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from cardap.models import CardAP, CardAPShare, Provider
from operators.models import Operation, Operator, OperatorScope, Terminal

R = Operator.Role
# Roles that may run card operations at all (within their scope). J-LIS staff administer the
# system and auditors only read: neither operates on citizens' cards.
OPERATING_ROLES = frozenset({R.OPERATOR, R.TERMINAL_ADMIN, R.PROVIDER_ADMIN})


def otp_verified(user: Any) -> bool:
    """Signed in and verified by a second factor in this session (django_otp's OTPMiddleware)."""
    check = getattr(user, "is_verified", None)
    return bool(getattr(user, "is_authenticated", False) and check is not None and check())


def is_jlis(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.role == R.JLIS_STAFF


def is_provider_admin(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.role == R.PROVIDER_ADMIN


def can_manage_provider(user: Any, provider_id: int | None) -> bool:
    """J-LIS staff manage every provider; a provider admin manages only its own."""
    if is_jlis(user):
        return True
    return is_provider_admin(user) and provider_id is not None and user.provider_id == provider_id


def can_read_audit(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.role in (R.JLIS_STAFF, R.AUDITOR)


def can_read_roster(user: Any) -> bool:
    return bool(getattr(user, "is_authenticated", False)) and user.role in (
        R.JLIS_STAFF,
        R.PROVIDER_ADMIN,
        R.TERMINAL_ADMIN,
        R.AUDITOR,
    )


def card_aps_of_provider(provider: Provider | int) -> QuerySet[CardAP]:
    """Approved card APs a provider may load: its own and those it co-owns (R3.4); affiliates
    only use an AP, they do not load it."""
    provider_id = provider if isinstance(provider, int) else provider.pk
    today = timezone.localdate()
    shared = CardAPShare.objects.filter(
        provider_id=provider_id, role=CardAPShare.Role.SHARED, since__lte=today
    ).filter(Q(until__isnull=True) | Q(until__gte=today))
    return CardAP.objects.filter(status=CardAP.Status.APPROVED).filter(
        Q(provider_id=provider_id) | Q(pk__in=shared.values("card_ap_id"))
    )


def check_scope(
    operator: Operator,
    *,
    operation: str,
    terminal: Terminal | None = None,
    card_ap: CardAP | None = None,
) -> OperatorScope:
    """Allow `operation` by `operator` on `terminal` for `card_ap`, or raise PermissionDenied.

    Returns the granting scope row. Pass every object the operation involves: a check without a
    terminal or card AP only proves the operation itself is granted."""
    if operation not in Operation.values:
        raise PermissionDenied(_("不明な操作です: %(op)s") % {"op": operation})
    if not operator.is_active:
        raise PermissionDenied(_("このアカウントは無効です。"))
    if operator.role not in OPERATING_ROLES or operator.provider_id is None:
        raise PermissionDenied(_("この役割ではカードの操作はできません。"))
    provider = operator.provider
    assert provider is not None  # narrowed by provider_id above
    if provider.status != Provider.Status.LIVE:
        raise PermissionDenied(
            _("サービス提供者「%(p)s」は運用中ではないため、カードの操作はできません。") % {"p": provider}
        )
    label = Operation(operation).label
    scope = OperatorScope.objects.filter(operator=operator, operation=operation).first()
    if scope is None:
        raise PermissionDenied(_("「%(op)s」の操作権限がありません。") % {"op": label})
    if terminal is not None:
        if terminal.provider_id != operator.provider_id:
            raise PermissionDenied(_("他のサービス提供者の端末は使用できません。"))
        if not terminal.is_active:
            raise PermissionDenied(_("端末「%(t)s」は無効です。") % {"t": terminal.name})
        if not scope.all_terminals and not scope.terminals.filter(pk=terminal.pk).exists():
            raise PermissionDenied(
                _("端末「%(t)s」で「%(op)s」を行う権限がありません。") % {"t": terminal.name, "op": label}
            )
    if card_ap is not None:
        if not card_aps_of_provider(provider).filter(pk=card_ap.pk).exists():
            raise PermissionDenied(
                _("カードAP「%(ap)s」はこのサービス提供者では扱えません。") % {"ap": card_ap.name}
            )
        if not scope.all_card_aps and not scope.card_aps.filter(pk=card_ap.pk).exists():
            raise PermissionDenied(
                _("カードAP「%(ap)s」について「%(op)s」を行う権限がありません。")
                % {"ap": card_ap.name, "op": label}
            )
    return scope


def has_scope(operator: Operator, **kwargs: Any) -> bool:
    try:
        check_scope(operator, **kwargs)
    except PermissionDenied:
        return False
    return True
