"""Every server-side rule a card job must pass before anything reaches the card (R1.2, R1.3,
R2.2, R3.4, R4.3, R8.1, R10), in one module so the access policy behind them can change in one
place. Each rule raises :class:`JobRefused` naming the rule and what would make it pass."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _

from cardap import service_calendar
from cardap import services as registry
from cardap.models import CardAP, Provider
from gpcard.operations import CardContent
from operators.models import Operator, Terminal
from operators.policy import card_aps_loadable_by, check_scope

AREA_KEYS = {CardAP.Area.LOCAL: "local", CardAP.Area.EXTENDED: "extended"}
PERSONALISED = 0x0F


class JobRefused(Exception):
    """A rule refuses the job. ``code`` is stable (logs, audit, diagnosis); ``message`` names the
    rule, ``hint`` says what would make it pass (both translated)."""

    def __init__(self, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} {self.hint}".strip()


def check_operator(
    operator: Operator, *, operation: str, terminal: Terminal, card_aps: Iterable[CardAP] = ()
) -> None:
    """Scope (operation × terminal × card AP), the operator's terminal, the provider live."""
    try:
        registry.ensure_can_operate(operator.provider)
    except ValidationError as exc:
        raise JobRefused(
            "provider_not_live", " ".join(exc.messages), _("J-LISに提供者の運用状態を確認してください。")
        ) from None
    try:
        check_scope(operator, operation=operation, terminal=terminal)
        for ap in card_aps:
            check_scope(operator, operation=operation, terminal=terminal, card_ap=ap)
    except PermissionDenied as exc:
        raise JobRefused(
            "scope",
            str(exc),
            _("提供者管理者に操作可能範囲（操作・端末・カードAP）の設定を依頼してください。"),
        ) from None


def check_service_open() -> None:
    try:
        service_calendar.check_can_start_job()
    except service_calendar.ServiceClosed as exc:
        code = "maintenance" if exc.reason == "maintenance" else "service_closed"
        raise JobRefused(code, exc.message, _("再開後にもう一度操作してください。")) from None


def check_consent(consent: bool) -> None:
    if not consent:
        raise JobRefused(
            "consent_missing",
            _("カード所有者の同意が確認されていません。"),
            _("所有者に内容を説明し、同意を確認してからチェックを入れてください。"),
        )


def check_loadable(provider: Provider, card_aps: Sequence[CardAP]) -> None:
    """A provider loads only APs it owns or co-provides (affiliates never load); the
    local-resident area only for a municipality's own APs (R1.2, R3.4)."""
    if not card_aps:
        raise JobRefused(
            "nothing_chosen", _("カードAPが選ばれていません。"), _("搭載するカードAPを選んでください。")
        )
    allowed = set(card_aps_loadable_by(provider).values_list("pk", flat=True))
    for ap in card_aps:
        if ap.pk not in allowed:
            raise JobRefused(
                "not_loadable",
                _(
                    "カードAP「%(ap)s」はこのサービス提供者では搭載・削除できません（自らが代表または共同利用のカードAPのみ）。"
                )
                % {"ap": ap.name},
                _("代表提供者の端末で操作してください。"),
            )


def check_resident(card_aps: Iterable[CardAP], resident_confirmed: bool) -> None:
    if any(ap.area == CardAP.Area.LOCAL for ap in card_aps) and not resident_confirmed:
        raise JobRefused(
            "resident_not_confirmed",
            _("地域住民向け領域は、この市区町村に住民票のある方のカードにだけ搭載できます。"),
            _("本人確認書類等で住民であることを確認し、確認欄にチェックを入れてください。"),
        )


def _on_card(content: CardContent) -> dict[str, int]:
    return {aid: lc for area in content.areas.values() for aid, lc in area.instances.items()}


def check_local_area_owner(provider: Provider, card_aps: Iterable[CardAP], content: CardContent) -> None:
    """Only one municipality's APs in the local-resident area at a time."""
    if not any(ap.area == CardAP.Area.LOCAL for ap in card_aps):
        return
    local = set(content.areas["local"].instances)
    others = CardAP.objects.filter(aid__in=local).exclude(provider=provider)
    unknown = local - set(CardAP.objects.filter(aid__in=local).values_list("aid", flat=True))
    if others.exists() or unknown:
        raise JobRefused(
            "local_area_other_municipality",
            _("地域住民向け領域には他の市区町村のカードAPが搭載されています。"),
            _("転入の手続きとして「転入処理」で地域住民向け領域を空にしてから搭載してください。"),
        )


def check_not_on_card(card_aps: Iterable[CardAP], content: CardContent) -> None:
    present = _on_card(content)
    for ap in card_aps:
        if ap.aid in present:
            raise JobRefused(
                "already_installed",
                _("カードAP「%(ap)s」は既にこのカードに搭載されています。") % {"ap": ap.name},
                _("搭載し直す場合は先に削除してください。"),
            )


def check_on_card(card_aps: Iterable[CardAP], content: CardContent) -> None:
    present = _on_card(content)
    for ap in card_aps:
        if ap.aid not in present:
            raise JobRefused(
                "not_on_card",
                _("カードAP「%(ap)s」はこのカードに搭載されていません。") % {"ap": ap.name},
                _("カードを読み取り直して、搭載されているカードAPを選んでください。"),
            )


def check_capacity(card_aps: Iterable[CardAP], content: CardContent) -> None:
    """The memory the APs will take against each area's free memory read from the card (R1.3)."""
    need: dict[str, int] = {}
    for ap in card_aps:
        area = AREA_KEYS[CardAP.Area(ap.area)]
        need[area] = need.get(area, 0) + (ap.memory_cost or 0)
    for area, bytes_needed in need.items():
        free = content.areas[area].free
        if bytes_needed > free:
            label = CardAP.Area.LOCAL.label if area == "local" else CardAP.Area.EXTENDED.label
            raise JobRefused(
                "capacity",
                _("%(area)sの空き容量が足りません（必要 %(need)d バイト、空き %(free)d バイト）。")
                % {"area": label, "need": bytes_needed, "free": free},
                _("搭載するカードAPを減らすか、不要なカードAPを削除してください。"),
            )


def check_municipality(provider: Provider) -> None:
    if not provider.is_municipality:
        raise JobRefused(
            "move_in_municipality_only",
            _("転入処理は市区町村だけが行えます。"),
            _("転入先の市区町村の窓口で手続きしてください。"),
        )


def check_load_rules(
    *, provider: Provider, card_aps: Sequence[CardAP], content: CardContent, resident_confirmed: bool
) -> None:
    """The rules that depend on the card's content: run on the operator's read before the job
    starts and again on the job's own read before any command that changes the card."""
    check_loadable(provider, card_aps)
    check_resident(card_aps, resident_confirmed)
    check_local_area_owner(provider, card_aps, content)
    check_not_on_card(card_aps, content)
    check_capacity(card_aps, content)
