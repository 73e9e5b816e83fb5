"""Who may use the provider-facing registry pages: a signed-in operator with a verified second
factor, of the right role, belonging to a provider."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django_otp.decorators import otp_required

from operators.models import Operator

View = Callable[..., HttpResponseBase]


def role_required(*roles: str, provider: bool = True) -> Callable[[View], View]:
    """Require OTP-verified sign-in and one of `roles` (and membership of a provider)."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            user = request.user
            if getattr(user, "role", None) not in roles or (
                provider and getattr(user, "provider_id", None) is None
            ):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(otp_required(wrapped))  # type: ignore[return-value]

    return decorator


provider_admin_required = role_required(Operator.Role.PROVIDER_ADMIN)
