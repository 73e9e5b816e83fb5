"""Writes on operators, scopes and terminals. Each checks the actor's authority first (a refusal
is audited and changes nothing), then writes and audits in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from operators import tokens
from operators.audit import record
from operators.models import Operation, Operator, OperatorScope, Terminal
from operators.policy import R, can_manage_provider, card_aps_loadable_by, deny, is_jlis

TOKEN_PREFIX = "cat_"  # "card AP terminal": makes a leaked token recognisable to secret scanners


def _deny(*, actor: Operator, request: HttpRequest | None, action: str, target: str, message: str) -> None:
    raise deny(request or actor, message, reason="manage", attempted=action, target=target)


def ensure_can_manage(
    *, actor: Operator, provider_id: int | None, request: HttpRequest | None, action: str, target: str
) -> None:
    if can_manage_provider(actor, provider_id):
        return
    if actor.role == R.PROVIDER_ADMIN:
        message = _("他のサービス提供者の操作者・端末は変更できません。")
    else:
        message = _("この操作は提供者管理者またはJ-LIS職員だけが行えます。")
    _deny(actor=actor, request=request, action=action, target=target, message=message)


def _ensure_role_allowed(*, actor: Operator, role: str, request: HttpRequest | None, target: str) -> None:
    if role not in R.values:
        raise ValidationError({"role": _("不明な役割です。")})
    if role == R.JLIS_STAFF and not is_jlis(actor):
        _deny(
            actor=actor,
            request=request,
            action="operator.role",
            target=target,
            message=_("J-LIS職員のアカウントはJ-LIS職員だけが作成・変更できます。"),
        )


# --- operators ---------------------------------------------------------------------------------


def create_operator(
    *,
    actor: Operator,
    provider_id: int,
    username: str,
    role: str,
    last_name: str = "",
    first_name: str = "",
    email: str = "",
    request: HttpRequest | None = None,
) -> tuple[Operator, str]:
    """Create an operator of `provider_id` with a generated initial password (returned, shown once)."""
    ensure_can_manage(
        actor=actor, provider_id=provider_id, request=request, action="operator.create", target=username
    )
    _ensure_role_allowed(actor=actor, role=role, request=request, target=username)
    if role == R.JLIS_STAFF:
        raise ValidationError({"role": _("J-LIS職員はサービス提供者に所属しません。")})
    if Operator.objects.filter(username__iexact=username).exists():
        raise ValidationError({"username": _("このユーザー名は既に使われています。")})
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        user = Operator(
            username=username,
            role=role,
            provider_id=provider_id,
            last_name=last_name,
            first_name=first_name,
            email=email,
        )
        user.full_clean(exclude=["password"])
        validate_password(password, user)
        user.set_password(password)
        user.must_change_password = True  # the initial password is replaced at first sign-in
        user.save()
        record(
            action="operator.create",
            request=request,
            actor=actor,
            provider_id=provider_id,
            target=user.username,
            detail={"role": role},
        )
    return user, password


def update_operator(
    *,
    actor: Operator,
    operator: Operator,
    role: str,
    is_active: bool,
    last_name: str,
    first_name: str,
    email: str,
    request: HttpRequest | None = None,
) -> Operator:
    ensure_can_manage(
        actor=actor,
        provider_id=operator.provider_id,
        request=request,
        action="operator.update",
        target=operator.username,
    )
    if operator.role == R.JLIS_STAFF:
        _ensure_role_allowed(actor=actor, role=R.JLIS_STAFF, request=request, target=operator.username)
    _ensure_role_allowed(actor=actor, role=role, request=request, target=operator.username)
    if operator.pk == actor.pk and (role != actor.role or not is_active):
        raise ValidationError(_("自分自身の役割変更・無効化はできません。別の管理者に依頼してください。"))
    before = {"role": operator.role, "is_active": operator.is_active}
    with transaction.atomic():
        locked = Operator.objects.select_for_update().get(pk=operator.pk)
        locked.role, locked.is_active = role, is_active
        locked.last_name, locked.first_name, locked.email = last_name, first_name, email
        locked.full_clean(exclude=["password"])
        locked.save()
        if role not in (R.TERMINAL_ADMIN, R.PROVIDER_ADMIN) and locked.administered_terminals.exists():
            # A terminal's administrator must keep an administrator role (R2.3).
            raise ValidationError(
                _("この人は端末管理者に指定されています。先に端末の管理者を変更してください。")
            )
        if role == R.AUDITOR:
            locked.scopes.all().delete()
        after = {"role": role, "is_active": is_active}
        changes = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
        record(
            action="operator.permission_change" if changes else "operator.update",
            request=request,
            actor=actor,
            provider_id=locked.provider_id,
            target=locked.username,
            detail={"changes": changes},
        )
    return locked


def reset_password(*, actor: Operator, operator: Operator, request: HttpRequest | None = None) -> str:
    ensure_can_manage(
        actor=actor,
        provider_id=operator.provider_id,
        request=request,
        action="operator.reset_password",
        target=operator.username,
    )
    password = secrets.token_urlsafe(12)
    with transaction.atomic():
        operator.set_password(password)
        operator.must_change_password = True
        operator.save(update_fields=["password", "must_change_password"])
        record(
            action="operator.reset_password",
            request=request,
            actor=actor,
            target=operator.username,
            provider_id=operator.provider_id,
        )
    return password


def reset_authenticator(*, actor: Operator, operator: Operator, request: HttpRequest | None = None) -> None:
    """Remove the operator's authenticator and backup codes: they enrol again at next sign-in."""
    from django_otp.plugins.otp_static.models import StaticDevice
    from django_otp.plugins.otp_totp.models import TOTPDevice

    ensure_can_manage(
        actor=actor,
        provider_id=operator.provider_id,
        request=request,
        action="operator.reset_otp",
        target=operator.username,
    )
    with transaction.atomic():
        TOTPDevice.objects.filter(user=operator).delete()
        StaticDevice.objects.filter(user=operator).delete()
        record(
            action="operator.reset_otp",
            request=request,
            actor=actor,
            target=operator.username,
            provider_id=operator.provider_id,
        )


# --- scopes ------------------------------------------------------------------------------------


def set_scopes(
    *,
    actor: Operator,
    operator: Operator,
    grants: dict[str, dict[str, Any]],
    request: HttpRequest | None = None,
) -> list[OperatorScope]:
    """Replace the operator's scopes. `grants` maps an operation to
    {"all_terminals": bool, "terminals": [ids], "all_card_aps": bool, "card_aps": [ids]};
    operations absent from `grants` are revoked."""
    ensure_can_manage(
        actor=actor,
        provider_id=operator.provider_id,
        request=request,
        action="scope.change",
        target=operator.username,
    )
    if operator.role not in (R.OPERATOR, R.TERMINAL_ADMIN, R.PROVIDER_ADMIN) and grants:
        raise ValidationError(_("この役割には操作可能範囲を設定できません。"))
    own_terminals = set(
        Terminal.objects.filter(provider_id=operator.provider_id or 0).values_list("pk", flat=True)
    )
    own_aps = set(card_aps_loadable_by(operator.provider_id or 0).values_list("pk", flat=True))
    for op, grant in grants.items():
        if op not in Operation.values:
            raise ValidationError(_("不明な操作です: %(op)s") % {"op": op})
        if not set(grant.get("terminals", [])) <= own_terminals:
            raise ValidationError(_("他のサービス提供者の端末は指定できません。"))
        if not set(grant.get("card_aps", [])) <= own_aps:
            raise ValidationError(_("このサービス提供者が扱えないカードAPは指定できません。"))
    before = describe_scopes(operator)
    with transaction.atomic():
        OperatorScope.objects.filter(operator=operator).exclude(operation__in=list(grants)).delete()
        result = []
        for op, grant in sorted(grants.items()):
            scope, _created = OperatorScope.objects.update_or_create(
                operator=operator,
                operation=op,
                defaults={
                    "all_terminals": bool(grant.get("all_terminals")),
                    "all_card_aps": bool(grant.get("all_card_aps")),
                },
            )
            scope.terminals.set([] if scope.all_terminals else grant.get("terminals", []))
            scope.card_aps.set([] if scope.all_card_aps else grant.get("card_aps", []))
            result.append(scope)
        after = describe_scopes(operator)
        if before != after:
            record(
                action="operator.permission_change",
                request=request,
                actor=actor,
                provider_id=operator.provider_id,
                target=operator.username,
                detail={"scopes": {"before": before, "after": after}},
            )
    return result


def describe_scopes(operator: Operator) -> dict[str, dict[str, Any]]:
    """A stable, audit-friendly description of an operator's scopes (names, not only ids)."""
    out: dict[str, dict[str, Any]] = {}
    for s in OperatorScope.objects.filter(operator=operator).prefetch_related("terminals", "card_aps"):
        out[s.operation] = {
            "terminals": "*" if s.all_terminals else sorted(t.name for t in s.terminals.all()),
            "card_aps": "*" if s.all_card_aps else sorted(a.name for a in s.card_aps.all()),
        }
    return out


# --- terminals ---------------------------------------------------------------------------------


def register_terminal(
    *,
    actor: Operator,
    provider_id: int,
    name: str,
    location: str,
    administrator: Operator,
    request: HttpRequest | None = None,
) -> Terminal:
    ensure_can_manage(
        actor=actor, provider_id=provider_id, request=request, action="terminal.create", target=name
    )
    with transaction.atomic():
        terminal = Terminal(
            provider_id=provider_id, name=name, location=location, administrator=administrator
        )
        terminal.full_clean()
        terminal.save()
        record(
            action="terminal.create",
            request=request,
            actor=actor,
            provider_id=provider_id,
            target=name,
            detail={"location": location, "administrator": administrator.username},
        )
    return terminal


def update_terminal(
    *,
    actor: Operator,
    terminal: Terminal,
    name: str,
    location: str,
    administrator: Operator,
    is_active: bool,
    request: HttpRequest | None = None,
) -> Terminal:
    ensure_can_manage(
        actor=actor,
        provider_id=terminal.provider_id,
        request=request,
        action="terminal.update",
        target=terminal.name,
    )
    before = {
        "name": terminal.name,
        "location": terminal.location,
        "administrator": terminal.administrator.username,
        "is_active": terminal.is_active,
    }
    with transaction.atomic():
        terminal.name, terminal.location, terminal.administrator, terminal.is_active = (
            name,
            location,
            administrator,
            is_active,
        )
        terminal.full_clean()
        terminal.save()
        after = {
            "name": name,
            "location": location,
            "administrator": administrator.username,
            "is_active": is_active,
        }
        record(
            action="terminal.update",
            request=request,
            actor=actor,
            provider_id=terminal.provider_id,
            target=terminal.name,
            detail={"changes": {k: [before[k], after[k]] for k in before if before[k] != after[k]}},
        )
    return terminal


def issue_terminal_credential(
    *, actor: Operator, terminal: Terminal, request: HttpRequest | None = None
) -> str:
    """Issue (or rotate: the old one stops working at once) the terminal agent's credential.
    The returned token is shown once and never stored."""
    ensure_can_manage(
        actor=actor,
        provider_id=terminal.provider_id,
        request=request,
        action="terminal.credential",
        target=terminal.name,
    )
    prefix, token = tokens.new_token(TOKEN_PREFIX)
    rotated = terminal.has_credential
    with transaction.atomic():
        terminal.credential_prefix = prefix
        terminal.credential_hash = tokens.digest(token)
        terminal.credential_issued_at = timezone.now()
        terminal.credential_revoked_at = None
        terminal.save(
            update_fields=[
                "credential_prefix",
                "credential_hash",
                "credential_issued_at",
                "credential_revoked_at",
            ]
        )
        record(
            action="terminal.credential_rotate" if rotated else "terminal.credential_issue",
            request=request,
            actor=actor,
            provider_id=terminal.provider_id,
            target=terminal.name,
            detail={"credential_id": prefix},
        )
    return token


def revoke_terminal_credential(
    *, actor: Operator, terminal: Terminal, request: HttpRequest | None = None
) -> None:
    ensure_can_manage(
        actor=actor,
        provider_id=terminal.provider_id,
        request=request,
        action="terminal.credential_revoke",
        target=terminal.name,
    )
    with transaction.atomic():
        terminal.credential_hash = None
        terminal.credential_revoked_at = timezone.now()
        terminal.save(update_fields=["credential_hash", "credential_revoked_at"])
        record(
            action="terminal.credential_revoke",
            request=request,
            actor=actor,
            provider_id=terminal.provider_id,
            target=terminal.name,
            detail={"credential_id": terminal.credential_prefix},
        )


def authenticate_terminal(token: str, *, administrator: bool = True) -> Terminal | None:
    """The active terminal holding `token`, or None. Lookup is by digest, so timing reveals nothing
    about the secret; the provider must be live and the credential unrevoked. ``administrator``:
    fetch the terminal's administrator with it (the API's request.user); the relay, which checks
    the credential on every poll and POST, does not need it."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    related = ("provider", "administrator") if administrator else ("provider",)
    terminal = (
        Terminal.objects.select_related(*related)
        .filter(credential_hash=tokens.digest(token), credential_revoked_at__isnull=True, is_active=True)
        .first()
    )
    if terminal is None or not terminal.provider.is_live:
        return None
    return terminal


def touch_terminal(terminal: Terminal) -> None:
    Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=timezone.now())


def card_ap_choices(provider_id: int) -> Iterable[Any]:
    return card_aps_loadable_by(provider_id).order_by("name")
