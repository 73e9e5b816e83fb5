"""The admin's entry point into the access policy: the site (J-LIS staff only, one sign-in path,
a recent code for every write) and the one audited ModelAdmin every app's admin builds on."""

from __future__ import annotations

from functools import update_wrapper
from typing import Any
from urllib.parse import quote

from django.contrib import admin
from django.db import transaction
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite

from operators import policy
from operators.audit import record


class JLISAdminSite(OTPAdminSite):
    """Only J-LIS staff with a verified second factor get in; everyone else gets the one audited
    refusal. Signing in happens on the operators' sign-in page only (lockout and audit apply
    there), and every POST (save, delete, action, password set) needs a recent code."""

    site_header = _("カードAP搭載システム 管理（J-LIS）")
    site_title = _("カードAP搭載システム 管理（J-LIS）")

    def __init__(self, name: str = "admin") -> None:
        super().__init__(name)

    def has_permission(self, request: HttpRequest) -> bool:
        return super().has_permission(request) and policy.is_jlis(request)

    def login(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:  # type: ignore[override]
        """No second sign-in page: send the browser to the operators' sign-in."""
        if request.user.is_authenticated and not self.has_permission(request):
            raise policy.deny(request, reason="admin")
        index = reverse("admin:index", current_app=self.name)
        next_url = request.GET.get("next") or index
        if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
            next_url = index
        if self.has_permission(request):
            return redirect(next_url)
        return redirect(f"{reverse('operators:login')}?next={quote(next_url)}")

    def password_change(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:  # type: ignore[override]
        return redirect("operators:password_change")

    def admin_view(self, view: Any, cacheable: bool = False) -> Any:
        inner = super().admin_view(view, cacheable)

        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.user.is_authenticated and not self.has_permission(request):
                raise policy.deny(request, reason="admin")
            logout = reverse("admin:logout", current_app=self.name)
            if request.method == "POST" and request.path != logout and not policy.has_recent_code(request):
                return policy.reauth_redirect(request)
            return inner(request, *args, **kwargs)  # type: ignore[no-any-return]

        return update_wrapper(guarded, view)


def provider_of(obj: Model) -> int | None:
    """The provider an admin object belongs to, for the audit entry's tenant."""
    if obj._meta.label == "cardap.Provider":
        return obj.pk  # type: ignore[no-any-return]
    for path in ("provider_id", "card_ap.provider_id", "operator.provider_id", "user.provider_id"):
        value: Any = obj
        for part in path.split("."):
            value = getattr(value, part, None)
        if value is not None:
            return value  # type: ignore[no-any-return]
    return None


class AuditedAdmin(admin.ModelAdmin):
    """Every add, change and delete in the admin (one object, inline rows, "delete selected")
    leaves an audit entry in the same transaction. Subclasses whose writes go through a service
    (which audits) override save_model and call `self.saved_by_service(...)`."""

    def audit(self, request: HttpRequest, obj: Model, action: str, **detail: Any) -> None:
        record(
            action=f"admin.{obj._meta.model_name}.{action}",
            request=request,
            provider_id=provider_of(obj),
            target=f"{obj._meta.model_name}:{obj.pk}",
            detail={"repr": str(obj)[:200], **detail},
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self.audit(request, obj, "change" if change else "add", fields=sorted(form.changed_data))

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            self.audit(request, obj, "add", via=form.instance._meta.model_name)
        for obj, fields in formset.changed_objects:
            self.audit(request, obj, "change", fields=sorted(fields), via=form.instance._meta.model_name)
        for obj in formset.deleted_objects:
            self.audit(request, obj, "delete", via=form.instance._meta.model_name)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.audit(request, obj, "delete")
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        with transaction.atomic():
            for obj in queryset:
                self.audit(request, obj, "delete", bulk=True)
            super().delete_queryset(request, queryset)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records J-LIS staff may read but nobody changes in the admin (the audit log, feeds...)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
