"""Two-step sign-in: password, then a one-time code (TOTP or a backup code); enrolment of the
authenticator by QR code at first sign-in; re-authentication before sensitive actions."""

from __future__ import annotations

import re
import time
from base64 import b32encode
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

import django_otp
import qrcode
import qrcode.image.svg
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from operators import lockout
from operators.audit import client_ip, record
from operators.forms import CodeForm, PasswordForm
from operators.models import Operator
from operators.permissions import otp_verified

PRE_AUTH = "operators.pre_auth"  # user who passed the password step, awaiting the code
NEXT = "operators.next"
REAUTH_AT = "operators.reauth_at"
BACKUP_CODES = 10
PRE_AUTH_SECONDS = 5 * 60  # the code must follow the password within this time
# A 12-digit individual number or 11-digit resident record code typed into the username field
# must never reach the audit log.
_PERSONAL_NUMBER = re.compile(r"\d{11,12}")


def loggable_username(username: str) -> str:
    digits = username.replace("-", "").replace(" ", "")
    return "(redacted: 11-12 digits)" if _PERSONAL_NUMBER.fullmatch(digits) else username[:150]


def _safe_next(request: HttpRequest, url: str | None) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return reverse(settings.LOGIN_REDIRECT_URL)


def _lock_message(until: Any) -> str:
    when = date_format(timezone.localtime(until), "Y-m-d H:i")
    return _(
        "サインインの失敗が続いたため、一時的にロックしています。%(when)s（日本時間）以降に再度お試しください。"
    ) % {"when": when}


def _pending_user(request: HttpRequest) -> Operator | None:
    pending = request.session.get(PRE_AUTH)
    if not pending or time.time() - pending.get("at", 0) > PRE_AUTH_SECONDS:
        return None
    user = Operator.objects.filter(pk=pending["uid"], is_active=True).first()
    return user


def _fail(request: HttpRequest, *, username: str, action: str, actor: Any = None) -> str | None:
    """Count a failure, audit it (and any lockout it causes); return the lockout message if locked."""
    ip = client_ip(request)
    name = loggable_username(username)
    record(action=action, request=request, actor=actor or name, detail={"username": name})
    newly = lockout.register_failure(username, ip)
    if newly:
        record(
            action="auth.lockout",
            request=request,
            actor=actor or name,
            detail={"username": name, "subjects": newly},
        )
    until = lockout.locked_until(username, ip)
    return _lock_message(until) if until else None


@never_cache
@sensitive_post_parameters("password")
def login_view(request: HttpRequest) -> HttpResponse:
    if otp_verified(request.user):
        return redirect(_safe_next(request, request.GET.get("next")))
    form = PasswordForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"].strip()
        until = lockout.locked_until(username, client_ip(request))
        if until:
            name = loggable_username(username)
            record(action="auth.locked_attempt", request=request, actor=name, detail={"username": name})
            error = _lock_message(until)
        else:
            user = authenticate(request, username=username, password=form.cleaned_data["password"])
            if user is None:
                error = _fail(request, username=username, action="auth.password_failed") or _(
                    "ユーザー名またはパスワードが正しくありません。"
                )
            else:
                request.session.cycle_key()
                request.session[PRE_AUTH] = {"uid": user.pk, "backend": user.backend, "at": time.time()}
                request.session[NEXT] = _safe_next(
                    request, request.GET.get("next") or request.POST.get("next")
                )
                record(action="auth.password_ok", request=request, actor=user)
                if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
                    return redirect("operators:otp")
                return redirect("operators:enrol")
    return render(
        request, "operators/login.html", {"form": form, "error": error, "next": request.GET.get("next", "")}
    )


def _verify(user: Operator, code: str) -> tuple[Device | None, str | None]:
    """The device that accepts `code` (TOTP refuses replays: django-otp remembers the last time
    step used), or an explanation why verification was not attempted."""
    for device in TOTPDevice.objects.filter(user=user, confirmed=True):
        allowed, info = device.verify_is_allowed()
        if not allowed and info and info.get("locked_until"):
            wait = max(1, int((info["locked_until"] - timezone.now()).total_seconds()) + 1)
            return None, _("確認コードの誤りが続いたため、%(s)d秒待ってから入力してください。") % {"s": wait}
        if code.isdigit() and device.verify_token(code):
            return device, None
    for static in StaticDevice.objects.filter(user=user, confirmed=True):
        if static.verify_token(code.lower()):
            return static, None
    return None, None


def _complete_sign_in(request: HttpRequest, user: Operator, device: Device, backend: str) -> None:
    auth_login(request, user, backend=backend)
    django_otp.login(request, device)
    lockout.clear(user.username)
    request.session.pop(PRE_AUTH, None)
    request.session[REAUTH_AT] = time.time()
    record(
        action="auth.sign_in",
        request=request,
        actor=user,
        detail={"factor": "backup_code" if isinstance(device, StaticDevice) else "totp"},
    )


def _code_step(request: HttpRequest) -> tuple[Operator, CodeForm] | HttpResponse:
    """The user who passed the password step and the code form, or a redirect back to it."""
    user = _pending_user(request)
    if user is None:
        messages.error(
            request, _("サインインの手続きが見つかりません。ユーザー名とパスワードから入力し直してください。")
        )
        return redirect("operators:login")
    return user, CodeForm(request.POST or None)


@never_cache
def otp_view(request: HttpRequest) -> HttpResponse:
    step = _code_step(request)
    if isinstance(step, HttpResponse):
        return step
    user, form = step
    if not TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return redirect("operators:enrol")
    error = None
    if request.method == "POST" and form.is_valid():
        until = lockout.locked_until(user.username, client_ip(request))
        if until:
            record(action="auth.locked_attempt", request=request, actor=user)
            error = _lock_message(until)
        else:
            device, why = _verify(user, form.cleaned_data["code"])
            if device is not None:
                _complete_sign_in(request, user, device, request.session[PRE_AUTH]["backend"])
                return HttpResponseRedirect(request.session.pop(NEXT, None) or reverse("home"))
            error = (
                why
                or _fail(request, username=user.username, action="auth.otp_failed", actor=user)
                or _(
                    "確認コードが正しくないか、既に使用済みです。認証アプリの最新のコードを入力してください。"
                )
            )
    return render(request, "operators/otp.html", {"form": form, "error": error, "pending": user})


def _qr_svg(data: str) -> str:
    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return img.to_string(encoding="unicode")


def _new_backup_codes(user: Operator) -> list[str]:
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        static = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
        StaticToken.objects.bulk_create([StaticToken(device=static, token=c) for c in codes])
    return codes


@never_cache
def enrol_view(request: HttpRequest) -> HttpResponse:
    step = _code_step(request)
    if isinstance(step, HttpResponse):
        return step
    user, form = step
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return redirect("operators:otp")
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=False)
    error = None
    if request.method == "POST" and form.is_valid():
        until = lockout.locked_until(user.username, client_ip(request))
        if until:
            error = _lock_message(until)
        elif device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            codes = _new_backup_codes(user)
            record(action="auth.otp_enrolled", request=request, actor=user)
            next_url = request.session.pop(NEXT, None) or reverse("home")
            _complete_sign_in(request, user, device, request.session[PRE_AUTH]["backend"])
            return render(request, "operators/backup_codes.html", {"codes": codes, "next": next_url})
        else:
            error = _fail(request, username=user.username, action="auth.otp_failed", actor=user) or _(
                "確認コードが正しくありません。認証アプリに表示されている最新のコードを入力してください。"
            )
    secret = b32encode(device.bin_key).decode()
    return render(
        request,
        "operators/enrol.html",
        {
            "form": form,
            "error": error,
            "qr_svg": _qr_svg(device.config_url),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "pending": user,
        },
    )


def reauth_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Sensitive actions (roles, scopes, credentials) need a code entered within REAUTH_SECONDS."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return reauth_redirect(request) or view(request, *args, **kwargs)

    return wrapper


def reauth_redirect(request: HttpRequest) -> HttpResponse | None:
    """The redirect to the code prompt when no code was entered within REAUTH_SECONDS, else None
    (for views that check the caller's role before asking for a code)."""
    at = request.session.get(REAUTH_AT)
    if at is None or time.time() - at > settings.REAUTH_SECONDS:
        messages.info(request, _("重要な操作のため、確認コードをもう一度入力してください。"))
        return redirect(f"{reverse('operators:reauth')}?next={quote(request.get_full_path())}")
    return None


@never_cache
def reauth_view(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST or None)
    error = None
    user = request.user
    assert isinstance(user, Operator)
    if request.method == "POST" and form.is_valid():
        until = lockout.locked_until(user.username, client_ip(request))
        if until:
            error = _lock_message(until)
        else:
            device, why = _verify(user, form.cleaned_data["code"])
            if device is not None:
                request.session[REAUTH_AT] = time.time()
                record(action="auth.reauth", request=request)
                return redirect(_safe_next(request, request.GET.get("next")))
            error = (
                why
                or _fail(request, username=user.username, action="auth.reauth_failed", actor=user)
                or _(
                    "確認コードが正しくないか、既に使用済みです。認証アプリの最新のコードを入力してください。"
                )
            )
    return render(request, "operators/reauth.html", {"form": form, "error": error})


@never_cache
@reauth_required
def backup_codes_view(request: HttpRequest) -> HttpResponse:
    """New backup codes (the old ones stop working), shown once."""
    user = request.user
    assert isinstance(user, Operator)
    if request.method != "POST":
        remaining = StaticToken.objects.filter(device__user=user).count()
        return render(request, "operators/backup_codes_confirm.html", {"remaining": remaining})
    codes = _new_backup_codes(user)
    record(action="auth.backup_codes_regenerated", request=request)
    return render(request, "operators/backup_codes.html", {"codes": codes, "next": reverse("home")})


@never_cache
@sensitive_post_parameters("old_password", "new_password1", "new_password2")
def password_change_view(request: HttpRequest) -> HttpResponse:
    """Operators replace the initial password they were given (validated by the password rules)."""
    from django.contrib.auth import update_session_auth_hash
    from django.contrib.auth.forms import PasswordChangeForm

    user = request.user
    assert isinstance(user, Operator)  # the OTP middleware admits only signed-in operators here
    form = PasswordChangeForm(user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        update_session_auth_hash(request, form.save())  # stay signed in (and OTP-verified) on this device
        record(action="auth.password_changed", request=request)
        messages.success(request, _("パスワードを変更しました。"))
        return redirect("home")
    return render(request, "operators/password_change.html", {"form": form})
