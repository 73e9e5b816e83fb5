"""Operator UI for the revocation feed: sync history and providers' last pulls (J-LIS staff and
provider administrators), and API key management (provider administrators)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from cardap.apikeys import issue_key, revoke_key
from cardap.models import ProviderAPIKey
from operators import policy
from operators.models import Operator
from operators.policy import R, guard
from revocation import selectors
from revocation.forms import APIKeyForm


def _user(request: HttpRequest) -> Operator:
    assert isinstance(request.user, Operator)  # admitted by @guard
    return request.user


@guard(R.JLIS_STAFF, R.PROVIDER_ADMIN)
def history(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    return render(
        request,
        "revocation/history.html",
        {
            "feeds": selectors.feed_history(),
            "pulls": selectors.pulls_visible_to(user),
            "is_jlis": policy.is_jlis(user),
            "last_feed": selectors.last_applied_feed(),
        },
    )


@guard(R.PROVIDER_ADMIN, reauth=True)  # issuing a key is as sensitive as a terminal credential
@never_cache  # the new key is in the page: no cache may keep it (Cache-Control: no-store)
@require_http_methods(["GET", "POST"])
def api_keys(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    token = None
    form = APIKeyForm(request.POST or None)
    if policy.valid_post(request, form):
        key, token = issue_key(
            provider=user.provider,  # type: ignore[arg-type]
            name=form.cleaned_data["name"],
            created_by=user.username,
            allowed_networks=form.cleaned_data["allowed_networks"],
            request=request,
        )
        form = APIKeyForm()
    keys = ProviderAPIKey.objects.filter(provider=user.provider).order_by("-created_at")
    status = 200 if request.method == "GET" or token else 400
    # The token is rendered once in this response and never stored or shown again.
    return render(
        request, "revocation/keys.html", {"form": form, "keys": keys, "token": token}, status=status
    )


@guard(R.PROVIDER_ADMIN)
@require_POST
def revoke_api_key(request: HttpRequest, key_id: int) -> HttpResponse:
    key = policy.get_or_404(request, ProviderAPIKey.objects.all(), pk=key_id)
    revoke_key(key=key, request=request)
    return redirect("revocation:keys")
