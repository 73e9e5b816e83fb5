"""Every page needs a signed-in operator verified by a second factor, except the sign-in steps
and the paths in settings.LOGIN_EXEMPT_PREFIXES (health check, static files, token-authenticated
APIs). Deny by default: a view that forgets a decorator is still protected."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _

from operators.audit import record
from operators.policy import otp_verified


def _password_change_paths() -> set[str]:
    return {reverse("operators:password_change"), reverse("operators:logout")}


class OTPRequiredMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if any(path.startswith(prefix) for prefix in settings.LOGIN_EXEMPT_PREFIXES):
            return self.get_response(request)
        user = request.user
        if otp_verified(user):
            if getattr(user, "must_change_password", False) and path not in _password_change_paths():
                # The initial password is still in use: nothing opens until it is replaced.
                return redirect("operators:password_change")
            return self.get_response(request)
        if user.is_authenticated:
            # Signed in without a second factor (never through our sign-in pages): refuse.
            record(action="auth.unverified_session", request=request)
            logout(request)
        elif settings.SESSION_COOKIE_NAME in request.COOKIES and request.session.session_key is None:
            # The browser still holds a session that the server has expired (inactivity).
            record(action="auth.session_expired", request=request, detail={"path": path[:200]})
            messages.warning(
                request,
                _(
                    "一定時間操作がなかったため、セッションの有効期限が切れました。もう一度サインインしてください。"
                ),
            )
        return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
