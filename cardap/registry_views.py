"""Provider-facing registry pages: registration requests (登録依頼書), the custom AP template and
examples, auto-load presets. Thin: forms in, services out, selectors scoped to the user's provider."""

from __future__ import annotations

from pathlib import Path

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from cardap import manufacture, selectors, services
from cardap.access import provider_admin_required, role_required
from cardap.forms import CardAPRequestForm, PresetForm
from cardap.models import AutoLoadPreset, CardAP, Provider
from operators.models import Operator
from operators.signin import reauth_required

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


def _apply_errors(form: CardAPRequestForm | PresetForm, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            target = field if field in form.fields else None
            for error in errors:
                form.add_error(target, error)
    else:
        form.add_error(None, exc)


@provider_admin_required
def request_list(request: HttpRequest) -> HttpResponse:
    provider = _provider(request)
    shared = selectors.visible_card_aps(provider).exclude(provider=provider)
    context = {
        "provider": provider,
        "card_aps": selectors.requests_for(provider),
        "shared": [(ap, selectors.relationship(ap, provider)) for ap in shared],
        "can_operate": selectors.can_operate(provider),
    }
    return render(request, "cardap/request_list.html", context)


@provider_admin_required
@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest) -> HttpResponse:
    provider = _provider(request)
    form = CardAPRequestForm(request.POST or None, request.FILES or None, provider=provider)
    if request.method == "POST" and form.is_valid():
        try:
            ap = services.submit_request(
                provider=provider, actor=request.user, request=request, **form.request_fields()
            )
        except ValidationError as exc:
            _apply_errors(form, exc)
        else:
            messages.success(request, _("登録依頼を受け付けました。J-LISの審査をお待ちください。"))
            return redirect("cardap:request-detail", pk=ap.pk)
    return render(
        request,
        "cardap/request_form.html",
        {"form": form, "downloads": DOWNLOADS},
        status=400 if form.errors else 200,
    )


@provider_admin_required
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    provider = _provider(request)
    try:
        ap = selectors.get_request(provider, pk)
    except CardAP.DoesNotExist:
        raise Http404 from None
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


@role_required(Operator.Role.PROVIDER_ADMIN, Operator.Role.JLIS_STAFF, provider=False)
def custom_ap_download(request: HttpRequest, name: str) -> FileResponse:
    if name not in DOWNLOADS:
        raise Http404
    relative, content_type = DOWNLOADS[name]
    return FileResponse(
        open(CUSTOM_AP_DIR / relative, "rb"),
        as_attachment=True,
        filename=name,  # noqa: SIM115
        content_type=f"{content_type}; charset=utf-8",
    )


@provider_admin_required
def preset_list(request: HttpRequest) -> HttpResponse:
    provider = _provider(request)
    return render(request, "cardap/preset_list.html", {"presets": selectors.presets_for(provider)})


@provider_admin_required
@require_http_methods(["GET", "POST"])
def preset_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    provider = _provider(request)
    preset = None
    if pk is not None:
        preset = selectors.presets_for(provider).filter(pk=pk).first()
        if preset is None:
            raise Http404
    form = PresetForm(request.POST or None, provider=provider, preset=preset)
    if request.method == "POST" and form.is_valid():
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
            _apply_errors(form, exc)
        else:
            messages.success(request, _("自動搭載セットを保存しました。"))
            return redirect("cardap:preset-list")
    return render(
        request,
        "cardap/preset_form.html",
        {"form": form, "preset": preset},
        status=400 if form.errors else 200,
    )


@provider_admin_required
@require_POST
def preset_delete(request: HttpRequest, pk: int) -> HttpResponse:
    provider = _provider(request)
    preset: AutoLoadPreset | None = selectors.presets_for(provider).filter(pk=pk).first()
    if preset is None:
        raise Http404
    services.delete_preset(preset=preset, actor=request.user, request=request)
    messages.success(request, _("自動搭載セットを削除しました。"))
    return redirect("cardap:preset-list")


@provider_admin_required
@reauth_required
@require_http_methods(["GET", "POST"])
def access_keys(request: HttpRequest) -> HttpResponse:
    """Export an access key package for the business systems' access module (R7), encrypted to a
    passphrase or to a registered public key; register such a key. The package is sent as a
    download and never kept; the passphrase is not stored."""
    provider = _provider(request)
    aps = selectors.visible_card_aps(provider).filter(status=CardAP.Status.APPROVED)
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
