"""Two-step sign-in: password, then a one-time code (TOTP or a backup code); enrolment of the
authenticator by QR code at first sign-in; re-authentication before sensitive actions."""

from __future__ import annotations

import re
import time
from base64 import b32encode
from collections.abc import Callable
from typing import Any, TypeVar

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
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp.util import random_hex

from operators import demo, lockout
from operators.audit import client_ip, record
from operators.forms import CodeForm, PasswordChangeForm, PasswordForm
from operators.models import Operator
from operators.otp_secrets import hash_backup_code
from operators.policy import REAUTH_AT, otp_verified, reauth_required  # noqa: F401 (re-exported)

PRE_AUTH = "operators.pre_auth"  # user who passed the password step, awaiting the code
NEXT = "operators.next"
BACKUP_CODES = 10
T = TypeVar("T")
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


def _locked(request: HttpRequest, *, username: str, actor: Any = None) -> str | None:
    """While the account or the address is locked: audit the attempt and return the message."""
    until = lockout.locked_until(username, client_ip(request))
    if until is None:
        return None
    name = loggable_username(username)
    record(action="auth.locked_attempt", request=request, actor=actor or name, detail={"username": name})
    return _lock_message(until)


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


def _attempt(
    request: HttpRequest,
    *,
    username: str,
    actor: Any = None,
    failure: str,
    wrong: str,
    verify: Callable[[], tuple[T | None, str | None]],
) -> tuple[T | None, str | None]:
    """The one check behind every secret typed at sign-in, re-authentication and password
    change: refused (and audited) while locked; else `verify()`, which returns what it accepted,
    or why it did not try (a throttled code: audited, not counted); a wrong secret is audited and
    counted toward the lockout. Returns the accepted value or the message to show."""
    if (locked := _locked(request, username=username, actor=actor)) is not None:
        return None, locked
    accepted, why = verify()
    if accepted is not None:
        return accepted, None
    if why is not None:
        name = loggable_username(username)
        record(
            action="auth.otp_throttled", request=request, actor=actor or name, detail={"step": failure}
        )
        return None, why
    return None, _fail(request, username=username, action=failure, actor=actor) or wrong


@never_cache
@sensitive_post_parameters("password")
def login_view(request: HttpRequest) -> HttpResponse:
    if otp_verified(request.user):
        return redirect(_safe_next(request, request.GET.get("next")))
    form = PasswordForm(request.POST or None)
    error = None
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"].strip()
        password = form.cleaned_data["password"]
        user, error = _attempt(
            request,
            username=username,
            failure="auth.password_failed",
            wrong=_("ユーザー名またはパスワードが正しくありません。"),
            verify=lambda: (authenticate(request, username=username, password=password), None),
        )
        if isinstance(user, Operator):
            request.session.cycle_key()
            enrolled = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            request.session[PRE_AUTH] = {
                "uid": user.pk,
                "backend": user.backend,
                "at": time.time(),
                # A fresh authenticator secret for this sign-in only: it is stored with a device
                # when the user confirms it, so nobody else's enrolment page ever shows it.
                **({} if enrolled else {"enrol_key": random_hex(20)}),
            }
            request.session[NEXT] = _safe_next(request, request.GET.get("next") or request.POST.get("next"))
            record(action="auth.password_ok", request=request, actor=user)
            return redirect("operators:otp" if enrolled else "operators:enrol")
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
        if static.verify_token(hash_backup_code(code)):  # stored hashed (operators.otp_secrets)
            return static, None
    return None, None


def _complete_sign_in(request: HttpRequest, user: Operator, device: Device, backend: str) -> str:
    """Sign in; returns where to go next (the password change first while the initial password
    is still in use: operators.middleware keeps every other page closed until then)."""
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
    next_url = request.session.pop(NEXT, None) or reverse("home")
    if user.must_change_password:
        record(action="auth.password_change_required", request=request, actor=user)
        return reverse("operators:password_change")
    return next_url


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
        code = form.cleaned_data["code"]
        device, error = _attempt(
            request,
            username=user.username,
            actor=user,
            failure="auth.otp_failed",
            wrong=_("確認コードが正しくないか、既に使用済みです。認証アプリの最新のコードを入力してください。"),
            verify=lambda: _verify(user, code),
        )
        if device is not None:
            return HttpResponseRedirect(
                _complete_sign_in(request, user, device, request.session[PRE_AUTH]["backend"])
            )
    context = {"form": form, "error": error, "pending": user, "demo_code": demo.current_code(user)}
    return render(request, "operators/otp.html", context)


def _qr_svg(data: str) -> str:
    img = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8, border=2)
    return img.to_string(encoding="unicode")


def _new_backup_codes(user: Operator) -> list[str]:
    with transaction.atomic():
        StaticDevice.objects.filter(user=user).delete()
        static = StaticDevice.objects.create(user=user, name="backup", confirmed=True)
        codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
        # Stored as keyed hashes (operators.otp_secrets), shown once.
        StaticToken.objects.bulk_create(
            [StaticToken(device=static, token=hash_backup_code(c)) for c in codes]
        )
    return codes


def _confirm_enrolment(user: Operator, key: str, code: str) -> TOTPDevice | None:
    """The new authenticator, stored confirmed, when `code` is right for the secret `key` shown
    on this session's enrolment page; any unconfirmed device of the user is discarded."""
    device = TOTPDevice(user=user, name="authenticator", key=key, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time()
    if not (code.isdigit() and totp.verify(int(code), device.tolerance)):
        return None
    device.last_t = totp.t()  # the enrolment code cannot be used again to sign in
    with transaction.atomic():
        Operator.objects.select_for_update().filter(pk=user.pk).first()  # one enrolment at a time
        if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
            return None  # another session enrolled first
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        device.save()
    return device


@never_cache
def enrol_view(request: HttpRequest) -> HttpResponse:
    """GET shows this sign-in's fresh secret and changes nothing; POST with the right code stores it."""
    step = _code_step(request)
    if isinstance(step, HttpResponse):
        return step
    user, form = step
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return redirect("operators:otp")
    key = request.session[PRE_AUTH].get("enrol_key")
    if not key:
        messages.error(
            request, _("サインインの手続きが見つかりません。ユーザー名とパスワードから入力し直してください。")
        )
        return redirect("operators:login")
    shown = TOTPDevice(user=user, name="authenticator", key=key)  # never saved: only for the QR code
    error = None
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        device, error = _attempt(
            request,
            username=user.username,
            actor=user,
            failure="auth.otp_failed",
            wrong=_("確認コードが正しくありません。認証アプリに表示されている最新のコードを入力してください。"),
            verify=lambda: (_confirm_enrolment(user, key, code), None),
        )
        if device is not None:
            codes = _new_backup_codes(user)
            record(action="auth.otp_enrolled", request=request, actor=user)
            next_url = _complete_sign_in(request, user, device, request.session[PRE_AUTH]["backend"])
            return render(request, "operators/backup_codes.html", {"codes": codes, "next": next_url})
    secret = b32encode(shown.bin_key).decode()
    return render(
        request,
        "operators/enrol.html",
        {
            "form": form,
            "error": error,
            "qr_svg": _qr_svg(shown.config_url),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "pending": user,
        },
    )


@never_cache
def reauth_view(request: HttpRequest) -> HttpResponse:
    form = CodeForm(request.POST or None)
    error = None
    user = request.user
    assert isinstance(user, Operator)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["code"]
        device, error = _attempt(
            request,
            username=user.username,
            actor=user,
            failure="auth.reauth_failed",
            wrong=_("確認コードが正しくないか、既に使用済みです。認証アプリの最新のコードを入力してください。"),
            verify=lambda: _verify(user, code),
        )
        if device is not None:
            request.session[REAUTH_AT] = time.time()
            record(action="auth.reauth", request=request)
            return redirect(_safe_next(request, request.GET.get("next")))
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
    """Operators replace the initial password they were given (validated by the password rules).
    A wrong current password counts toward the lockout, as at sign-in."""
    from django.contrib.auth import update_session_auth_hash

    user = request.user
    assert isinstance(user, Operator)  # the OTP middleware admits only signed-in operators here
    forced = user.must_change_password
    form = PasswordChangeForm(user, request.POST or None)
    error = None
    if request.method == "POST":
        def verify() -> tuple[bool | None, None]:
            if form.is_valid():
                return True, None
            if form.has_error("old_password", "password_incorrect"):
                return None, None  # a wrong current password: counted
            return False, None  # another mistake in the form: shown, not counted

        changed, error = _attempt(
            request,
            username=user.username,
            actor=user,
            failure="auth.password_change_failed",
            wrong="",
            verify=verify,
        )
        if changed:
            user.must_change_password = False
            form.save()  # saves the user, the flag with it
            update_session_auth_hash(request, user)  # stay signed in (and OTP-verified) on this device
            record(action="auth.password_changed", request=request, detail={"forced": forced})
            messages.success(request, _("パスワードを変更しました。"))
            return redirect("home")
    return render(
        request, "operators/password_change.html", {"form": form, "error": error or None, "forced": forced}
    )
