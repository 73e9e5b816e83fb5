"""The admin of people, scopes and terminals for J-LIS staff (the site and the audited base class
are in operators.admin_site). Setting a password and adding an authenticator or backup codes for
someone are audited and need a recent code, like every admin write."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.admin import StaticDeviceAdmin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.admin import TOTPDeviceAdmin
from django_otp.plugins.otp_totp.models import TOTPDevice

from operators.admin_site import AuditedAdmin, ReadOnlyAdmin
from operators.models import AuditEntry, Operator, OperatorScope, Terminal


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

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        """Setting someone's password: audited in the same transaction as the change."""
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = self.get_object(request, id)
                if user is not None:
                    self.audit(request, user, "password_set")
        return response


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
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["id", "at", "actor", "action", "ip", "target"]
    list_filter = ["action"]
    search_fields = ["actor", "action", "target"]
    date_hierarchy = "at"


# Other apps' admins of things that decide who may sign in: the same audit and re-authentication.
for _model, _base in ((StaticDevice, StaticDeviceAdmin), (TOTPDevice, TOTPDeviceAdmin), (Group, GroupAdmin)):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, type(f"Audited{_base.__name__}", (AuditedAdmin, _base), {}))
