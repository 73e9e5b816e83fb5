"""The Django admin for J-LIS staff, behind the same two-factor sign-in (django-otp's OTPAdminSite)
and limited to the J-LIS staff role."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django_otp.admin import OTPAdminSite

from operators.audit import record
from operators.models import AuditEntry, Operator, OperatorScope, Terminal
from operators.signin import REAUTH_AT


class JLISAdminSite(OTPAdminSite):
    def has_permission(self, request: HttpRequest) -> bool:
        return (
            super().has_permission(request)
            and getattr(request.user, "role", None) == Operator.Role.JLIS_STAFF
        )


# Swap the class of the default site in place, so every app's admin.register keeps working.
admin.site.__class__ = JLISAdminSite
admin.site.site_header = _("カードAP搭載システム 管理（J-LIS）")
admin.site.site_title = _("カードAP搭載システム 管理（J-LIS）")


class AuditedAdmin(admin.ModelAdmin):
    """Changes made by J-LIS staff in the admin go to the audit log like any other, and (roles,
    scopes, terminals being sensitive) need a recently re-entered code like the operator pages."""

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: Any = None,
    ) -> HttpResponse:
        at = request.session.get(REAUTH_AT)
        if request.method == "POST" and (at is None or time.time() - at > settings.REAUTH_SECONDS):
            return redirect(f"{reverse('operators:reauth')}?next={quote(request.get_full_path())}")
        return super().changeform_view(request, object_id, form_url, extra_context)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        record(
            action=f"admin.{obj._meta.model_name}.{'change' if change else 'add'}",
            request=request,
            target=str(obj)[:200],
            detail={"fields": sorted(form.changed_data)},
        )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        record(action=f"admin.{obj._meta.model_name}.delete", request=request, target=str(obj)[:200])
        super().delete_model(request, obj)


class ScopeInline(admin.TabularInline):
    model = OperatorScope
    extra = 0
    filter_horizontal = ["terminals", "card_aps"]


@admin.register(Operator)
class OperatorAdmin(AuditedAdmin, UserAdmin):
    list_display = ["username", "get_full_name", "role", "provider", "is_active", "last_login"]
    list_filter = ["role", "provider", "is_active"]
    search_fields = ["username", "last_name", "first_name", "email"]
    fieldsets = (
        *UserAdmin.fieldsets,  # type: ignore[misc]
        (_("役割と所属"), {"fields": ("role", "provider")}),
    )
    add_fieldsets = (
        *UserAdmin.add_fieldsets,
        (_("役割と所属"), {"fields": ("role", "provider")}),
    )
    inlines = [ScopeInline]


@admin.register(Terminal)
class TerminalAdmin(AuditedAdmin):
    list_display = [
        "name",
        "provider",
        "location",
        "administrator",
        "is_active",
        "credential_prefix",
        "last_seen_at",
    ]
    list_filter = ["provider", "is_active"]
    search_fields = ["name", "location"]
    readonly_fields = ["credential_prefix", "credential_issued_at", "credential_revoked_at", "last_seen_at"]


@admin.register(OperatorScope)
class OperatorScopeAdmin(AuditedAdmin):
    list_display = ["operator", "operation", "all_terminals", "all_card_aps"]
    list_filter = ["operation"]
    filter_horizontal = ["terminals", "card_aps"]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "at", "actor", "action", "ip", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "action", "target"]
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
