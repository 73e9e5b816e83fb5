"""The admin for J-LIS staff: providers (onboarding), registration requests (approve / reject with
a reason), card APs, usage relationships, presets, maintenance windows. Every change is audited;
state changes go through the services so the admin cannot bypass their rules."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from cardap import service_calendar, services
from cardap.models import (
    AIDAllocation,
    AutoLoadPreset,
    AutoLoadPresetItem,
    CardAP,
    CardAPInstallation,
    CardAPKey,
    CardAPShare,
    FailureIncident,
    MaintenanceWindow,
    Provider,
)
from operators.admin_site import AuditedAdmin, ReadOnlyAdmin
from operators.forms import apply_validation_error

# --- providers -----------------------------------------------------------------------------------


class ProviderAdminForm(forms.ModelForm):
    class Meta:
        model = Provider
        fields = [
            "name", "kind", "local_gov_code", "status", "legal_basis_kind", "legal_basis_reference",
            "legal_basis_date", "contract_reference", "operations_email", "failure_email",
            "maintenance_email",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        status = data.get("status")
        if self.instance.pk is None:
            if status != Provider.Status.APPLIED:
                self.add_error("status", _("新しいサービス提供者は「申請中」から始まります。"))
        elif status and "status" in self.changed_data:
            before = Provider.objects.get(pk=self.instance.pk)
            try:
                services.check_transition(
                    before,
                    status,
                    legal_basis_kind=data.get("legal_basis_kind") or "",
                    legal_basis_reference=data.get("legal_basis_reference") or "",
                    legal_basis_date=data.get("legal_basis_date"),
                    contract_reference=data.get("contract_reference") or "",
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        if data.get("kind") == Provider.Kind.MUNICIPALITY and not data.get("local_gov_code"):
            self.add_error("local_gov_code", _("市区町村には地方公共団体コードが必要です。"))
        return data


@admin.register(Provider)
class ProviderAdmin(AuditedAdmin):
    form = ProviderAdminForm
    list_display = ["name", "kind", "status", "local_gov_code", "legal_basis_kind", "legal_basis_date"]
    list_filter = ["kind", "status", "legal_basis_kind"]
    search_fields = ["name", "local_gov_code", "legal_basis_reference", "operations_email"]
    readonly_fields = ["status_changed_at", "created_at"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "local_gov_code", "status", "status_changed_at"]}),
        (
            _("法的根拠・契約"),
            {
                "fields": [
                    "legal_basis_kind",
                    "legal_basis_reference",
                    "legal_basis_date",
                    "contract_reference",
                ]
            },
        ),
        (_("連絡先"), {"fields": ["operations_email", "failure_email", "maintenance_email"]}),
    ]

    def save_model(self, request: HttpRequest, obj: Provider, form: forms.ModelForm, change: bool) -> None:
        if change and "status" in form.changed_data:
            # One service call: the status move and the fields edited with it, one audit entry.
            services.transition_provider(
                provider=obj,
                to=obj.status,
                actor=request.user,
                request=request,
                legal_basis_kind=obj.legal_basis_kind,
                legal_basis_reference=obj.legal_basis_reference,
                legal_basis_date=obj.legal_basis_date,
                contract_reference=obj.contract_reference,
                changes={name: getattr(obj, name) for name in form.changed_data},
            )
        else:
            super().save_model(request, obj, form, change)


# --- card APs and registration requests ----------------------------------------------------------


class CardAPAdminForm(forms.ModelForm):
    class Meta:
        model = CardAP
        fields = [  # the request (登録依頼書); review and manufacture fields are read-only
            "provider", "name", "type", "area", "purpose", "data_layout", "structure", "file_size",
            "record_count", "record_length", "pin_source", "pin_min_length", "pin_max_length",
            "pin_retry_limit", "user_number_source", "user_number_length", "user_number_charset",
            "memory_requested", "input_format", "input_file",
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if self.instance.status == CardAP.Status.REQUESTED:
            try:
                # The instance takes the form's values only after clean(): check those, not the old.
                services.check_request(_unsaved(self.instance, data))
            except ValidationError as exc:
                apply_validation_error(self, exc)
        return data


def _unsaved(instance: CardAP, data: dict[str, Any]) -> CardAP:
    for key, value in data.items():
        setattr(instance, key, value)
    return instance


class ShareInline(admin.TabularInline):
    model = CardAPShare
    fk_name = "card_ap"
    extra = 0
    can_delete = False
    fields = readonly_fields = ("provider", "role", "since", "until", "note", "created_by")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class KeyInline(admin.TabularInline):
    model = CardAPKey
    extra = 0
    can_delete = False
    # never the key nor its reference
    fields = readonly_fields = ("version", "key_length", "created_at", "retired_at")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def status_badge_html(ap: CardAP) -> str:
    # Colours in static/css/admin.css (green, amber, red, grey): no inline style under the CSP.
    return format_html(
        '<span class="status-badge status-{}">{}</span>', ap.status, ap.get_status_display()
    )


class RejectForm(forms.Form):
    reason = forms.CharField(label=_("却下理由"), widget=forms.Textarea(attrs={"rows": 4}))


@admin.register(CardAP)
class CardAPAdmin(AuditedAdmin):
    form = CardAPAdminForm
    list_display = ["name", "provider", "type", "area", "status_badge", "aid", "memory_cost"]
    list_filter = ["status", "type", "area", "provider__kind", "dap_demo_key"]
    search_fields = ["name", "aid", "load_file_aid", "provider__name", "purpose"]
    inlines = [ShareInline, KeyInline]

    @admin.display(description=_("状態"), ordering="status")
    def status_badge(self, obj: CardAP) -> str:
        return status_badge_html(obj)
    actions = ["approve_selected", "reject_selected", "retire_selected", "rotate_keys"]
    readonly_fields = [
        "status",
        "requested_by",
        "reviewed_by",
        "reviewed_at",
        "rejection_reason",
        "retired_at",
        "serial",
        "aid",
        "load_file_aid",
        "description_hex",
        "memory_cost",
        "sha256",
        "dap_demo_key",
        "created_at",
    ]
    exclude = ["load_file"]

    def get_readonly_fields(self, request: HttpRequest, obj: CardAP | None = None) -> list[str]:
        fields = list(self.readonly_fields)
        if obj is not None and obj.status != CardAP.Status.REQUESTED:
            # Once reviewed the request is a record: only its name and purpose stay editable.
            fields += [
                f.name for f in CardAP._meta.fields if f.name not in ("id", "name", "purpose", *fields)
            ]
        return fields

    @admin.action(description=_("選択した登録依頼を承認する（AIDを採番し製造）"))
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[CardAP]) -> HttpResponse | None:
        if "apply" not in request.POST:  # approval assigns AIDs for good: confirm on a page first
            context = {
                **self.admin_site.each_context(request),
                "title": _("登録依頼の承認"),
                "queryset": queryset.filter(status=CardAP.Status.REQUESTED).select_related("provider"),
                "skipped": queryset.exclude(status=CardAP.Status.REQUESTED).count(),
                "opts": self.model._meta,
                "action": "approve_selected",
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            }
            return TemplateResponse(request, "admin/cardap/approve_requests.html", context)
        for ap in queryset.filter(status=CardAP.Status.REQUESTED):
            try:
                done = services.approve_request(card_ap_id=ap.pk, actor=request.user, request=request)
            except ValidationError as exc:
                self.message_user(request, f"{ap.name}: {' '.join(exc.messages)}", messages.ERROR)
            except ImproperlyConfigured as exc:  # e.g. no DAP key configured: say so, change nothing
                self.message_user(request, f"{ap.name}: {exc}", messages.ERROR)
            else:
                self.message_user(
                    request,
                    gettext("%(name)s を承認しました（AID %(aid)s）。")
                    % {"name": done.name, "aid": done.aid},
                    messages.SUCCESS,
                )
        return None

    @admin.action(description=_("選択した登録依頼を却下する（理由を入力）"))
    def reject_selected(self, request: HttpRequest, queryset: QuerySet[CardAP]) -> HttpResponse | None:
        queryset = queryset.filter(status=CardAP.Status.REQUESTED)
        form = RejectForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            rejected = 0
            for ap in list(queryset):
                try:  # another J-LIS staff member may have reviewed it since the list was shown
                    services.reject_request(
                        card_ap_id=ap.pk,
                        actor=request.user,
                        request=request,
                        reason=form.cleaned_data["reason"],
                    )
                except ValidationError as exc:
                    self.message_user(request, f"{ap.name}: {' '.join(exc.messages)}", messages.ERROR)
                else:
                    rejected += 1
            if rejected:
                self.message_user(
                    request, gettext("%(n)d件を却下しました。") % {"n": rejected}, messages.SUCCESS
                )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("登録依頼の却下"),
            "form": form,
            "queryset": queryset,
            "opts": self.model._meta,
            "action": "reject_selected",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/cardap/reject_requests.html", context)

    @admin.action(description=_("選択したカードAPを廃止する（AIDは再利用しません）"))
    def retire_selected(self, request: HttpRequest, queryset: QuerySet[CardAP]) -> None:
        retired = 0
        for ap in queryset.filter(status=CardAP.Status.APPROVED):
            try:  # another J-LIS staff member may have retired it meanwhile
                services.retire_card_ap(card_ap=ap, actor=request.user, request=request)
            except ValidationError as exc:
                self.message_user(request, f"{ap.name}: {' '.join(exc.messages)}", messages.ERROR)
            else:
                retired += 1
        if retired:
            self.message_user(request, gettext("%(n)d件を廃止しました。") % {"n": retired}, messages.SUCCESS)
        else:
            self.message_user(
                request, gettext("廃止できるカードAP（承認済）が選ばれていません。"), messages.WARNING
            )

    @admin.action(description=_("選択したカードAPの鍵を更新する"))
    def rotate_keys(self, request: HttpRequest, queryset: QuerySet[CardAP]) -> None:
        for ap in queryset.filter(status=CardAP.Status.APPROVED):
            key = services.rotate_ap_key(card_ap=ap, actor=request.user, request=request)
            self.message_user(
                request,
                gettext("%(name)s の鍵を第%(v)d版に更新しました。") % {"name": ap.name, "v": key.version},
                messages.SUCCESS,
            )


class ShareAdminForm(forms.ModelForm):
    class Meta:
        model = CardAPShare
        fields = ["card_ap", "provider", "role", "since", "until", "note"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        try:
            services.check_share(
                card_ap=data["card_ap"],
                provider=data["provider"],
                role=data["role"],
                since=data["since"],
                until=data.get("until"),
                exclude_pk=self.instance.pk,
            )
        except ValidationError as exc:
            self.add_error(None, exc)
        return data


@admin.register(CardAPShare)
class CardAPShareAdmin(AuditedAdmin):
    form = ShareAdminForm
    list_display = ["card_ap", "provider", "role", "since", "until", "created_by"]
    list_filter = ["role"]
    search_fields = ["card_ap__name", "card_ap__aid", "provider__name"]

    def save_model(self, request: HttpRequest, obj: CardAPShare, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.created_by = request.user.get_username()
        super().save_model(request, obj, form, change)


@admin.register(CardAPInstallation)
class CardAPInstallationAdmin(ReadOnlyAdmin):  # written by card jobs only
    list_display = ["card_id", "card_ap", "state", "installed_at"]
    list_filter = ["state"]
    search_fields = ["card_id"]


@admin.register(AIDAllocation)
class AIDAllocationAdmin(ReadOnlyAdmin):  # the record that keeps AIDs from being reused
    list_display = ["aid", "serial", "area", "card_ap_name", "allocated_at"]
    list_filter = ["area"]
    search_fields = ["aid", "load_file_aid", "card_ap_name"]


class PresetItemInline(admin.TabularInline):
    model = AutoLoadPresetItem
    extra = 0
    fields = readonly_fields = ("position", "card_ap")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AutoLoadPreset)
class AutoLoadPresetAdmin(AuditedAdmin):
    """Providers compose their presets on their own page (the service checks what they may load);
    J-LIS staff see and may delete them here."""

    list_display = ["name", "provider", "created_at"]
    list_filter = ["provider__kind"]
    search_fields = ["name", "provider__name"]
    inlines = [PresetItemInline]
    readonly_fields = ["provider", "created_at"]
    fields = ["provider", "name", "description", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


# --- operations calendar -------------------------------------------------------------------------


class MaintenanceAdminForm(forms.ModelForm):
    class Meta:
        model = MaintenanceWindow
        fields = ["title", "description", "starts_at", "ends_at", "urgent"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.errors:
            return data
        if self.instance.pk is None or {"starts_at", "ends_at", "urgent"} & set(self.changed_data):
            try:
                service_calendar.validate_window(
                    starts_at=data["starts_at"],
                    ends_at=data["ends_at"],
                    urgent=data.get("urgent", False),
                    now=service_calendar.timezone.now(),
                )
            except ValidationError as exc:
                self.add_error(None, exc)
        return data


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(AuditedAdmin):
    form = MaintenanceAdminForm
    list_display = ["title", "starts_at", "ends_at", "urgent", "notified_at", "cancelled_at"]
    list_filter = ["urgent", ("cancelled_at", admin.EmptyFieldListFilter)]
    search_fields = ["title", "description"]
    actions = ["cancel_selected"]

    def save_model(
        self, request: HttpRequest, obj: MaintenanceWindow, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
        else:
            service_calendar.register_window(window=obj, actor=request.user, request=request)

    @admin.action(description=_("選択した計画保守を中止する"))
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[MaintenanceWindow]) -> None:
        for window in queryset:
            service_calendar.cancel_maintenance(window=window, actor=request.user, request=request)


@admin.register(FailureIncident)
class FailureIncidentAdmin(AuditedAdmin):
    list_display = ["provider", "incident_key", "summary", "occurrences", "first_seen_at", "notified_at"]
    list_filter = ["provider"]
    search_fields = ["incident_key", "summary", "provider__name"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
