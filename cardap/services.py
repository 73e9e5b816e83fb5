"""Writes to the registry: onboarding, usage relationships, registration requests, approval (AID
allocation and manufacture), AP keys, auto-load presets. Keyword-only, typed, atomic, audited.

Every refusal raises django.core.exceptions.ValidationError with a precise, translated message
and leaves stored data unchanged.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from cardap import custom_input, usernumber
from cardap.keystore import get_keystore
from cardap.models import (
    AIDAllocation,
    AIDSerialCounter,
    AutoLoadPreset,
    AutoLoadPresetItem,
    CardAP,
    CardAPKey,
    CardAPShare,
    Provider,
)
from cardap.selectors import can_operate, loadable_card_aps
from operators.audit import record

__all__ = ["can_operate", "ensure_can_operate"]

MAX_BINARY_SIZE = custom_input.MAX_BINARY_SIZE
MAX_RECORD_COUNT = custom_input.MAX_RECORD_COUNT
MAX_RECORD_LENGTH = custom_input.MAX_RECORD_LENGTH
AP_KEY_LENGTH = 16  # AES-128, the protocol's default for AP key sets
MAX_SERIAL = 0xFFFFFFFF  # 4-byte serial in the AID


def _actor_name(actor: Any) -> str:
    return actor if isinstance(actor, str) else (getattr(actor, "username", "") or "")


def ensure_can_operate(provider: Provider | None) -> None:
    """Raise ValidationError unless the provider is live (loading calls this before a job)."""
    if not can_operate(provider):
        status = provider.get_status_display() if provider is not None else "-"
        raise ValidationError(
            _("サービス提供者が運用中ではないため、カードAPの搭載・削除はできません（現在: %(status)s）。")
            % {"status": status},
            code="provider_not_live",
        )


# --- onboarding (R10) -----------------------------------------------------------------------------


def check_transition(
    locked: Provider,
    to: str,
    *,
    legal_basis_kind: str = "",
    legal_basis_reference: str = "",
    legal_basis_date: dt.date | None = None,
    contract_reference: str = "",
) -> None:
    """Raise ValidationError unless `locked` may move to `to`; fills the legal basis / contract
    fields on `locked` from the arguments (or keeps those already recorded)."""
    labels = dict(Provider.Status.choices)
    if to not in labels:
        raise ValidationError(_("不明な状態です: %(to)s") % {"to": to}, code="unknown_status")
    allowed = locked.allowed_transitions()
    if to not in allowed:
        raise ValidationError(
            _("「%(from)s」から「%(to)s」へは変更できません（変更可能: %(allowed)s）。")
            % {
                "from": labels[locked.status],
                "to": labels[to],
                "allowed": "、".join(str(labels[a]) for a in allowed) or _("なし"),
            },
            code="bad_transition",
        )
    if to == Provider.Status.LEGAL_CONFIRMED:
        kind = legal_basis_kind or locked.legal_basis_kind
        reference = (legal_basis_reference or locked.legal_basis_reference).strip()
        date = legal_basis_date or locked.legal_basis_date
        bases = locked.allowed_legal_bases()
        if kind not in bases:
            raise ValidationError(
                {
                    "legal_basis_kind": _("%(kind)s の法的根拠は %(bases)s です。")
                    % {
                        "kind": locked.get_kind_display(),
                        "bases": "、".join(str(Provider.LegalBasis(b).label) for b in bases),
                    }
                },
                code="legal_basis_kind",
            )
        if not reference or date is None:
            raise ValidationError(
                {"legal_basis_reference": _("法的根拠の名称・番号と日付を入力してください。")},
                code="legal_basis_missing",
            )
        locked.legal_basis_kind, locked.legal_basis_reference, locked.legal_basis_date = kind, reference, date
    if to == Provider.Status.CONTRACTED:
        reference = (contract_reference or locked.contract_reference).strip()
        if not reference:
            raise ValidationError(
                {"contract_reference": _("契約番号を入力してください。")}, code="contract_missing"
            )
        locked.contract_reference = reference


@transaction.atomic
def transition_provider(
    *,
    provider: Provider,
    to: str,
    actor: Any,
    request: HttpRequest | None = None,
    legal_basis_kind: str = "",
    legal_basis_reference: str = "",
    legal_basis_date: dt.date | None = None,
    contract_reference: str = "",
) -> Provider:
    """Move a provider along applied → legal_confirmed → contracted → live ⇄ suspended → ended."""
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    check_transition(
        locked,
        to,
        legal_basis_kind=legal_basis_kind,
        legal_basis_reference=legal_basis_reference,
        legal_basis_date=legal_basis_date,
        contract_reference=contract_reference,
    )
    before = locked.status
    locked.status = to
    locked.status_changed_at = timezone.now()
    locked.save()
    record(
        action="provider.status",
        actor=actor,
        request=request,
        provider_id=locked.pk,
        target=f"provider:{locked.pk}",
        detail={
            "from": before,
            "to": to,
            "legal_basis": locked.legal_basis_kind,
            "legal_reference": locked.legal_basis_reference,
            "contract": locked.contract_reference,
        },
    )
    provider.refresh_from_db()
    return locked


# --- usage patterns (R3.4) ------------------------------------------------------------------------


@transaction.atomic
def add_share(
    *,
    card_ap: CardAP,
    provider: Provider,
    role: str,
    since: dt.date,
    actor: Any,
    until: dt.date | None = None,
    note: str = "",
    request: HttpRequest | None = None,
) -> CardAPShare:
    """Record that `provider` shares (co-provider, may load) or uses (affiliate) `card_ap`."""
    check_share(card_ap=card_ap, provider=provider, role=role, since=since, until=until)
    share = CardAPShare.objects.create(
        card_ap=card_ap,
        provider=provider,
        role=role,
        since=since,
        until=until,
        note=note,
        created_by=_actor_name(actor),
    )
    audit_share(share, actor=actor, request=request, action="card_ap.share_added")
    return share


def check_share(
    *,
    card_ap: CardAP,
    provider: Provider,
    role: str,
    since: dt.date,
    until: dt.date | None,
    exclude_pk: int | None = None,
) -> None:
    if role not in CardAPShare.Role.values:
        raise ValidationError(_("不明な関係です: %(role)s") % {"role": role}, code="role")
    if provider.pk == card_ap.provider_id:
        raise ValidationError(
            _("代表提供者自身を共同利用者として登録することはできません。"), code="self_share"
        )
    if until is not None and until < since:
        raise ValidationError({"until": _("終了日は開始日以降にしてください。")}, code="dates")
    if card_ap.area == CardAP.Area.LOCAL and role == CardAPShare.Role.SHARED:
        raise ValidationError(
            _(
                "地域住民向け領域のカードAPは、代表提供者の市区町村以外は搭載できないため共同利用にできません。"
            ),
            code="local_share",
        )
    overlapping = CardAPShare.objects.select_for_update().filter(card_ap=card_ap, provider=provider)
    if exclude_pk is not None:
        overlapping = overlapping.exclude(pk=exclude_pk)
    for other in overlapping:
        if (other.until is None or other.until >= since) and (until is None or other.since <= until):
            raise ValidationError(
                _("同じ提供者との関係が期間 %(since)s〜%(until)s で既に登録されています。")
                % {"since": other.since, "until": other.until or "…"},
                code="overlap",
            )


def audit_share(share: CardAPShare, *, actor: Any, request: HttpRequest | None, action: str) -> None:
    record(
        action=action,
        actor=actor,
        request=request,
        provider_id=share.card_ap.provider_id,
        target=f"card_ap:{share.card_ap_id}",
        detail={
            "provider": share.provider_id,
            "role": share.role,
            "since": share.since.isoformat(),
            "until": share.until.isoformat() if share.until else None,
            "note": share.note,
        },
    )


@transaction.atomic
def end_share(
    *, share: CardAPShare, until: dt.date, actor: Any, request: HttpRequest | None = None
) -> CardAPShare:
    if until < share.since:
        raise ValidationError({"until": _("終了日は開始日以降にしてください。")}, code="dates")
    share.until = until
    share.save(update_fields=["until"])
    audit_share(share, actor=actor, request=request, action="card_ap.share_ended")
    return share


# --- registration requests (R3.1–R3.3) ------------------------------------------------------------


def check_request(ap: CardAP) -> custom_input.CustomAPSpec | None:
    """Validate an (unsaved or saved) request; raise ValidationError keyed by field. For a custom
    AP, returns the parsed input file and copies its PIN and user-number declarations onto `ap`."""
    errors: dict[str, list[str]] = {}

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    provider = ap.provider
    if provider.status in (Provider.Status.SUSPENDED, Provider.Status.ENDED):
        err("__all__", _("停止中または終了したサービス提供者は登録依頼できません。"))
    if ap.area == CardAP.Area.LOCAL and not provider.is_municipality:
        err(
            "area",
            _("地域住民向け領域は市区町村だけが利用できます（%(kind)s は拡張利用領域を選んでください）。")
            % {"kind": provider.get_kind_display()},
        )
    if ap.type not in CardAP.Type.values:
        err("type", _("種類を選んでください。"))
    spec = None
    if ap.type == CardAP.Type.CUSTOM:
        if ap.input_format not in ("yaml", "json"):
            err("input_format", _("入力ファイルの形式は yaml か json です。"))
        elif not ap.input_file.strip():
            err("input_file", _("独自カードAPには入力ファイルが必要です。"))
        else:
            try:
                spec = custom_input.parse(ap.input_file, fmt=ap.input_format)
            except custom_input.InputFileError as exc:
                for issue in exc.issues:
                    err("input_file", str(issue))
        if spec is not None:
            ap.pin_source = spec.pin.source if spec.pin else ""
            if spec.pin:
                ap.pin_min_length, ap.pin_max_length = spec.pin.min_length, spec.pin.max_length
                ap.pin_retry_limit = spec.pin.retry_limit
            ap.user_number_length, ap.user_number_charset = spec.user_number.length, spec.user_number.charset
            ap.structure, ap.file_size, ap.record_count, ap.record_length = "", None, None, None
    elif ap.type in CardAP.Type.values:
        _check_standard_layout(ap, err)
    try:
        usernumber.check_declaration(length=ap.user_number_length, charset=ap.user_number_charset)
    except ValidationError as exc:
        err("user_number_length", exc.messages[0])
    if ap.user_number_charset not in usernumber.CHARSETS:
        err("user_number_charset", _("利用者番号の文字種を選んでください。"))
    if ap.pin_source:
        if not 4 <= ap.pin_min_length <= ap.pin_max_length <= 16:
            err("pin_min_length", _("暗証番号の桁数は 4〜16 で、最小 ≦ 最大にしてください。"))
        if not 1 <= ap.pin_retry_limit <= 15:
            err("pin_retry_limit", _("暗証番号の試行回数上限は 1〜15 です。"))
    if errors:
        raise ValidationError(errors)
    return spec


def _check_standard_layout(ap: CardAP, err: Any) -> None:
    needs_pin = ap.type in (CardAP.Type.A, CardAP.Type.D)
    if needs_pin and ap.pin_source not in (CardAP.PinSource.HOLDER, CardAP.PinSource.SYSTEM):
        err(
            "pin_source",
            _("%(type)s は暗証番号（利用者設定またはシステム固定）が必要です。")
            % {"type": ap.get_type_display()},
        )
    if not needs_pin and ap.pin_source:
        err("pin_source", _("C型は暗証番号を使いません。「暗証番号なし」を選んでください。"))
    required = {CardAP.Type.A: CardAP.Structure.RECORDS, CardAP.Type.D: CardAP.Structure.BINARY}.get(ap.type)  # type: ignore[call-overload]
    if required and ap.structure != required:
        err(
            "structure",
            _("%(type)s のファイル構造は「%(structure)s」です。")
            % {"type": ap.get_type_display(), "structure": CardAP.Structure(required).label},
        )
    if ap.structure == CardAP.Structure.BINARY:
        if ap.file_size is None or not 1 <= ap.file_size <= MAX_BINARY_SIZE:
            err("file_size", _("バイナリのサイズは 1〜%(max)d バイトです。") % {"max": MAX_BINARY_SIZE})
        ap.record_count = ap.record_length = None
    elif ap.structure == CardAP.Structure.RECORDS:
        if ap.record_count is None or not 1 <= ap.record_count <= MAX_RECORD_COUNT:
            err("record_count", _("レコード数は 1〜%(max)d です。") % {"max": MAX_RECORD_COUNT})
        if ap.record_length is None or not 1 <= ap.record_length <= MAX_RECORD_LENGTH:
            err("record_length", _("レコード長は 1〜%(max)d バイトです。") % {"max": MAX_RECORD_LENGTH})
        ap.file_size = None
    else:
        err("structure", _("ファイル構造を選んでください。"))


@transaction.atomic
def submit_request(
    *, provider: Provider, actor: Any, request: HttpRequest | None = None, **fields: Any
) -> CardAP:
    """A provider's registration request (登録依頼書). `fields` are CardAP request fields."""
    # A provider's members apply for it; J-LIS staff may register on a provider's behalf (R3.1).
    is_jlis = getattr(actor, "role", None) == "jlis_staff"
    if getattr(actor, "provider_id", None) != provider.pk and not is_jlis:
        raise ValidationError(_("他のサービス提供者の登録依頼はできません。"), code="other_provider")
    allowed = {
        "name",
        "type",
        "area",
        "purpose",
        "data_layout",
        "structure",
        "file_size",
        "record_count",
        "record_length",
        "pin_source",
        "pin_min_length",
        "pin_max_length",
        "pin_retry_limit",
        "user_number_source",
        "user_number_length",
        "user_number_charset",
        "memory_requested",
        "input_file",
        "input_format",
    }
    unknown = set(fields) - allowed
    if unknown:
        raise TypeError(f"unknown request fields: {sorted(unknown)}")
    ap = CardAP(provider=provider, status=CardAP.Status.REQUESTED, requested_by=_actor_name(actor), **fields)
    spec = check_request(ap)
    _check_capacity(ap, spec)
    ap.save()
    record(
        action="card_ap.requested",
        actor=actor,
        request=request,
        provider_id=provider.pk,
        target=f"card_ap:{ap.pk}",
        detail={"name": ap.name, "type": ap.type, "area": ap.area},
    )
    return ap


def _check_capacity(ap: CardAP, spec: custom_input.CustomAPSpec | None) -> None:
    """Refuse what could never fit in the area (R1.3)."""
    from cardap import manufacture

    cost = manufacture.estimated_cost(ap, spec)
    quota = manufacture.area_quota(ap.area)
    if cost > quota:
        raise ValidationError(
            _("必要な容量 %(cost)d バイトが領域の容量 %(quota)d バイトを超えています。")
            % {"cost": cost, "quota": quota},
            code="too_large",
        )


# --- approval: AID and manufacture --------------------------------------------------------------


def allocate_serial() -> int:
    """Next card AP serial; call inside the approving transaction. The counter row is locked (FOR
    UPDATE) so concurrent approvals serialise here, and it only ever increases."""
    counter, _created = AIDSerialCounter.objects.select_for_update().get_or_create(name="card_ap")
    if counter.last_serial >= MAX_SERIAL:
        raise ValidationError(_("AIDの通番を使い切りました。"), code="serials_exhausted")
    counter.last_serial += 1
    counter.save(update_fields=["last_serial"])
    return counter.last_serial


@transaction.atomic
def approve_request(*, card_ap_id: int, actor: Any, request: HttpRequest | None = None) -> CardAP:
    """J-LIS approval: assign the AID, manufacture the AP (description, load file for a custom AP
    signed with the DAP key, size and hash) and generate its key."""
    from cardap import manufacture

    ap = CardAP.objects.select_for_update().select_related("provider").get(pk=card_ap_id)
    if ap.status != CardAP.Status.REQUESTED:
        raise ValidationError(
            _("「%(status)s」のカードAPは承認できません。") % {"status": ap.get_status_display()},
            code="not_requested",
        )
    spec = check_request(ap)
    serial = allocate_serial()
    aid, load_file_aid = manufacture.aids(ap.area, serial)
    product = manufacture.manufacture(ap, spec)
    ap.serial, ap.aid, ap.load_file_aid = serial, aid, load_file_aid
    ap.description_hex = product.description.hex().upper()
    ap.load_file = product.load_file
    ap.memory_cost = product.memory_cost
    ap.sha256 = product.sha256
    ap.dap_demo_key = product.dap_demo_key
    ap.status = CardAP.Status.APPROVED
    ap.reviewed_by = _actor_name(actor)
    ap.reviewed_at = timezone.now()
    ap.rejection_reason = ""
    ap.save()
    AIDAllocation.objects.create(
        serial=serial, area=ap.area, aid=aid, load_file_aid=load_file_aid, card_ap=ap, card_ap_name=ap.name
    )
    if product.needs_key:
        _new_key(ap)
    record(
        action="card_ap.approved",
        actor=actor,
        request=request,
        provider_id=ap.provider_id,
        target=f"card_ap:{ap.pk}",
        detail={
            "aid": aid,
            "serial": serial,
            "sha256": ap.sha256,
            "memory_cost": ap.memory_cost,
            "dap_demo_key": ap.dap_demo_key,
        },
    )
    return ap


@transaction.atomic
def reject_request(*, card_ap_id: int, actor: Any, reason: str, request: HttpRequest | None = None) -> CardAP:
    ap = CardAP.objects.select_for_update().get(pk=card_ap_id)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("却下理由を入力してください。")}, code="reason_missing")
    if ap.status != CardAP.Status.REQUESTED:
        raise ValidationError(
            _("「%(status)s」のカードAPは却下できません。") % {"status": ap.get_status_display()},
            code="not_requested",
        )
    ap.status = CardAP.Status.REJECTED
    ap.rejection_reason = reason
    ap.reviewed_by = _actor_name(actor)
    ap.reviewed_at = timezone.now()
    ap.save(update_fields=["status", "rejection_reason", "reviewed_by", "reviewed_at"])
    record(
        action="card_ap.rejected",
        actor=actor,
        request=request,
        provider_id=ap.provider_id,
        target=f"card_ap:{ap.pk}",
        detail={"reason": reason},
    )
    return ap


@transaction.atomic
def retire_card_ap(*, card_ap: CardAP, actor: Any, request: HttpRequest | None = None) -> CardAP:
    """Stop new loads of a card AP. Its AID stays allocated forever (cards may still carry it)."""
    ap = CardAP.objects.select_for_update().get(pk=card_ap.pk)
    if ap.status != CardAP.Status.APPROVED:
        raise ValidationError(_("承認済のカードAPだけが廃止できます。"), code="not_approved")
    ap.status = CardAP.Status.RETIRED
    ap.retired_at = timezone.now()
    ap.save(update_fields=["status", "retired_at"])
    record(
        action="card_ap.retired",
        actor=actor,
        request=request,
        provider_id=ap.provider_id,
        target=f"card_ap:{ap.pk}",
        detail={"aid": ap.aid},
    )
    return ap


# --- AP keys (R9.4) -------------------------------------------------------------------------------


def _new_key(ap: CardAP) -> CardAPKey:
    last = ap.keys.order_by("-version").first()
    version = (last.version + 1) if last else 1
    ref = get_keystore().put(purpose=f"card_ap:{ap.pk}:v{version}", secret=secrets.token_bytes(AP_KEY_LENGTH))
    ap.keys.filter(retired_at__isnull=True).update(retired_at=timezone.now())
    return CardAPKey.objects.create(card_ap=ap, version=version, key_ref=ref, key_length=AP_KEY_LENGTH)


@transaction.atomic
def rotate_ap_key(*, card_ap: CardAP, actor: Any, request: HttpRequest | None = None) -> CardAPKey:
    """A new key version for cards loaded from now on; the old stays readable for cards that carry it."""
    ap = CardAP.objects.select_for_update().get(pk=card_ap.pk)
    if ap.status != CardAP.Status.APPROVED:
        raise ValidationError(_("承認済のカードAPだけが鍵を更新できます。"), code="not_approved")
    key = _new_key(ap)
    record(
        action="card_ap.key_rotated",
        actor=actor,
        request=request,
        provider_id=ap.provider_id,
        target=f"card_ap:{ap.pk}",
        detail={"version": key.version},
    )
    return key


def current_key(card_ap: CardAP) -> tuple[int, bytes] | None:
    """(version, key bytes) of the AP's current key, for loading; None when the AP has no key."""
    key = card_ap.keys.filter(retired_at__isnull=True).order_by("-version").first()
    if key is None:
        return None
    return key.version, get_keystore().get(key.key_ref)


def key_version(card_ap: CardAP, version: int) -> bytes:
    key = card_ap.keys.get(version=version)
    return get_keystore().get(key.key_ref)


# --- auto-load presets (R4.2) ---------------------------------------------------------------------


def _check_preset_aps(provider: Provider, card_aps: list[CardAP]) -> None:
    if not card_aps:
        raise ValidationError({"card_aps": _("カードAPを1つ以上選んでください。")}, code="empty")
    allowed = set(loadable_card_aps(provider).values_list("pk", flat=True))
    refused = [ap.name for ap in card_aps if ap.pk not in allowed]
    if refused:
        raise ValidationError(
            {
                "card_aps": _("この提供者が搭載できないカードAPが含まれています: %(names)s")
                % {"names": "、".join(refused)}
            },
            code="not_loadable",
        )
    if len({ap.pk for ap in card_aps}) != len(card_aps):
        raise ValidationError({"card_aps": _("同じカードAPが重複しています。")}, code="duplicate")


@transaction.atomic
def save_preset(
    *,
    provider: Provider,
    name: str,
    card_aps: list[CardAP],
    actor: Any,
    description: str = "",
    preset: AutoLoadPreset | None = None,
    request: HttpRequest | None = None,
) -> AutoLoadPreset:
    """Create or replace a named auto-load list; only APs the provider may load (same area rules)."""
    name = name.strip()
    if not name:
        raise ValidationError({"name": _("名称を入力してください。")}, code="name")
    _check_preset_aps(provider, card_aps)
    clash = AutoLoadPreset.objects.filter(provider=provider, name=name)
    if preset is not None:
        if preset.provider_id != provider.pk:
            raise ValidationError(
                _("他のサービス提供者の自動搭載セットは変更できません。"), code="other_provider"
            )
        clash = clash.exclude(pk=preset.pk)
    if clash.exists():
        raise ValidationError({"name": _("同じ名称の自動搭載セットがあります。")}, code="name_taken")
    if preset is None:
        preset = AutoLoadPreset.objects.create(provider=provider, name=name, description=description)
        action = "preset.created"
    else:
        preset.name, preset.description = name, description
        preset.save(update_fields=["name", "description"])
        preset.items.all().delete()
        action = "preset.updated"
    AutoLoadPresetItem.objects.bulk_create(
        AutoLoadPresetItem(preset=preset, card_ap=ap, position=i) for i, ap in enumerate(card_aps)
    )
    record(
        action=action,
        actor=actor,
        request=request,
        provider_id=provider.pk,
        target=f"preset:{preset.pk}",
        detail={"name": name, "card_aps": [ap.pk for ap in card_aps]},
    )
    return preset


@transaction.atomic
def delete_preset(*, preset: AutoLoadPreset, actor: Any, request: HttpRequest | None = None) -> None:
    record(
        action="preset.deleted",
        actor=actor,
        request=request,
        provider_id=preset.provider_id,
        target=f"preset:{preset.pk}",
        detail={"name": preset.name},
    )
    preset.delete()
