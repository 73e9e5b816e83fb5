"""Operator UI for the revocation feed: sync history and providers' last pulls (J-LIS staff and
provider administrators), and API key management (provider administrators)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST
from django_otp.decorators import otp_required

from cardap.apikeys import issue_key, revoke_key
from cardap.models import ProviderAPIKey
from operators import audit
from operators.models import Operator
from operators.signin import reauth_redirect
from revocation import selectors
from revocation.forms import APIKeyForm

Role = Operator.Role


def _require_role(request: HttpRequest, *roles: str) -> Operator:
    user = request.user
    if not isinstance(user, Operator) or user.role not in roles:
        raise PermissionDenied(_("この画面を利用する権限がありません。"))
    if user.role != Role.JLIS_STAFF and user.provider_id is None:
        raise PermissionDenied(_("この画面を利用する権限がありません。"))
    return user


@otp_required
def history(request: HttpRequest) -> HttpResponse:
    user = _require_role(request, Role.JLIS_STAFF, Role.PROVIDER_ADMIN)
    return render(
        request,
        "revocation/history.html",
        {
            "feeds": selectors.feed_history(),
            "pulls": selectors.pulls_visible_to(user),
            "is_jlis": user.role == Role.JLIS_STAFF,
            "last_feed": selectors.last_applied_feed(),
        },
    )


@otp_required
@never_cache  # the new key is in the page: no cache may keep it (Cache-Control: no-store)
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    user = _require_role(request, Role.PROVIDER_ADMIN)
    # Issuing a key is as sensitive as a terminal credential: a code entered just now.
    if (prompt := reauth_redirect(request)) is not None:
        return prompt
    token = None
    form = APIKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        key, token = issue_key(
            provider=user.provider,  # type: ignore[arg-type]
            name=form.cleaned_data["name"],
            created_by=user.username,
            allowed_networks=form.cleaned_data["allowed_networks"],
        )
        audit.record(
            action="apikey.issue",
            request=request,
            target=f"apikey {key.prefix}",
            detail={"name": key.name, "allowed_networks": key.allowed_networks},
        )
        form = APIKeyForm()
    keys = ProviderAPIKey.objects.filter(provider=user.provider).order_by("-created_at")
    status = 200 if request.method == "GET" or token else 400
    # The token is rendered once in this response and never stored or shown again.
    return render(
        request, "revocation/keys.html", {"form": form, "keys": keys, "token": token}, status=status
    )


@otp_required
@require_POST
def revoke_api_key(request: HttpRequest, key_id: int) -> HttpResponse:
    user = _require_role(request, Role.PROVIDER_ADMIN)
    key = get_object_or_404(ProviderAPIKey, pk=key_id, provider_id=user.provider_id)
    revoke_key(key=key)
    audit.record(
        action="apikey.revoke", request=request, target=f"apikey {key.prefix}", detail={"name": key.name}
    )
    return redirect("revocation:keys")
