"""Provider-facing registry pages: registration requests (登録依頼書), the custom AP template and
examples, auto-load presets. Thin: forms in, services out, selectors scoped to the user's provider."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from cardap import manufacture, selectors, services
from cardap.forms import CardAPRequestForm, PresetForm
from cardap.models import AutoLoadPreset, CardAP, Provider
from operators import policy
from operators.forms import apply_validation_error
from operators.policy import R, guard

CUSTOM_AP_DIR = Path(__file__).resolve().parent / "custom_ap"
DOWNLOADS = {
    "template.yaml": ("template.yaml", "application/yaml"),
    "points-card.yaml": ("examples/points-card.yaml", "application/yaml"),
    "clinic-card.json": ("examples/clinic-card.json", "application/json"),
}


def _provider(request: HttpRequest) -> Provider:
    provider = getattr(request.user, "provider", None)
    assert provider is not None  # the access decorators admit only members of a provider
    return provider


@guard(R.PROVIDER_ADMIN)
def request_list(request: HttpRequest) -> HttpResponse:
    provider = _provider(request)
    shared = policy.card_aps_visible_to(provider).exclude(provider=provider).order_by("aid")
    context = {
        "provider": provider,
        "card_aps": selectors.requests_for(provider),
        "shared": [(ap, selectors.relationship(ap, provider)) for ap in shared],
        "can_operate": selectors.can_operate(provider),
    }
    return render(request, "cardap/request_list.html", context)


@guard(R.PROVIDER_ADMIN)
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    provider = _provider(request)
    form = CardAPRequestForm(request.POST or None, request.FILES or None, provider=provider)
    if policy.valid_post(request, form):
        try:
            ap = services.submit_request(
                provider=provider, actor=request.user, request=request, **form.request_fields()
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("登録依頼を受け付けました。J-LISの審査をお待ちください。"))
            return redirect("cardap:request-detail", pk=ap.pk)
    return render(
        request,
        "cardap/request_form.html",
        {"form": form, "downloads": DOWNLOADS},
        status=400 if form.errors else 200,
    )


@guard(R.PROVIDER_ADMIN)
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    ap = policy.get_or_404(request, CardAP.objects.all(), pk=pk)
    cost = ap.memory_cost
    if cost is None and ap.status == CardAP.Status.REQUESTED:
        try:  # what the AP will take once manufactured, so the provider sees it before approval
            cost = manufacture.estimated_cost(ap, services.check_request(ap))
        except ValidationError:
            cost = None
    context = {
        "ap": ap,
        "shares": ap.shares.select_related("provider"),
        "quota": manufacture.area_quota(ap.area),
        "cost": cost,
    }
    return render(request, "cardap/request_detail.html", context)


@guard(R.PROVIDER_ADMIN, R.JLIS_STAFF)
def custom_ap_download(request: HttpRequest, name: str) -> FileResponse:
    if name not in DOWNLOADS:
        raise policy.not_found(request, name=name)
    relative, content_type = DOWNLOADS[name]
    return FileResponse(
        open(CUSTOM_AP_DIR / relative, "rb"),
        as_attachment=True,
        filename=name,  # noqa: SIM115
        content_type=f"{content_type}; charset=utf-8",
    )


@guard(R.PROVIDER_ADMIN)
def preset_list(request: HttpRequest) -> HttpResponse:
    provider = _provider(request)
    return render(request, "cardap/preset_list.html", {"presets": selectors.presets_for(provider)})


@guard(R.PROVIDER_ADMIN)
@require_http_methods(["GET", "POST"])
def preset_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    provider = _provider(request)
    preset = None
    if pk is not None:
        preset = policy.get_or_404(request, AutoLoadPreset.objects.all(), pk=pk)
    form = PresetForm(request.POST or None, provider=provider, preset=preset)
    if policy.valid_post(request, form):
        try:
            services.save_preset(
                provider=provider,
                preset=preset,
                actor=request.user,
                request=request,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                card_aps=list(form.cleaned_data["card_aps"]),
            )
        except ValidationError as exc:
            apply_validation_error(form, exc)
        else:
            messages.success(request, _("自動搭載セットを保存しました。"))
            return redirect("cardap:preset-list")
    return render(
        request,
        "cardap/preset_form.html",
        {"form": form, "preset": preset},
        status=400 if form.errors else 200,
    )


@guard(R.PROVIDER_ADMIN)
@require_POST
def preset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    preset = policy.get_or_404(request, AutoLoadPreset.objects.all(), pk=pk)
    services.delete_preset(preset=preset, actor=request.user, request=request)
    messages.success(request, _("自動搭載セットを削除しました。"))
    return redirect("cardap:preset-list")


@guard(R.PROVIDER_ADMIN, reauth=True)
@require_http_methods(["GET", "POST"])
def access_keys(request: HttpRequest) -> HttpResponse:
    """Export an access key package for the business systems' access module (R7), encrypted to a
    passphrase or to a registered public key; register such a key. The package is sent as a
    download and never kept; the passphrase is not stored."""
    provider = _provider(request)
    aps = policy.card_aps_visible_to(provider).filter(status=CardAP.Status.APPROVED).order_by("aid")
    error_fields: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if request.POST.get("action") == "register":
                services.register_package_key(
                    provider=provider,
                    actor=request.user,
                    name=request.POST.get("name", ""),
                    public_key=request.POST.get("public_key", ""),
                    request=request,
                )
                messages.success(request, _("公開鍵を登録しました。"))
                return redirect("cardap:access-keys")
            ids = [int(v) for v in request.POST.getlist("card_aps") if v.isdigit()]
            recipient = request.POST.get("recipient", "")
            passphrase = request.POST.get("passphrase", "")
            if not recipient and passphrase != request.POST.get("passphrase_again", ""):
                raise ValidationError({"passphrase": _("パスフレーズが一致しません。")})
            name, data = services.export_access_key_package(
                provider=provider,
                actor=request.user,
                card_ap_ids=ids,
                passphrase=passphrase,
                recipient_id=int(recipient) if recipient.isdigit() else None,
                request=request,
            )
            response = HttpResponse(data, content_type="application/json")
            response["Content-Disposition"] = f'attachment; filename="{name}"'
            response["Cache-Control"] = "no-store"
            return response
        except ValidationError as exc:
            error_fields = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
    return render(
        request,
        "cardap/access_keys.html",
        {
            "card_aps": aps,
            "recipients": provider.package_keys.filter(revoked_at__isnull=True),
            "errors": error_fields,
        },
    )
