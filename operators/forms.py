from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.contrib.auth import forms as auth_forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from operators.formlayout import GroupedForm
from operators.models import Operation, Operator, Terminal
from operators.policy import R, card_aps_loadable_by, is_jlis


class PasswordForm(forms.Form):
    username = forms.CharField(
        label=_("ユーザー名"),
        max_length=150,
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=_("パスワード"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form, and the new password must differ from the current one (the initial
    password, handed over by an administrator, must really be replaced)."""

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        old, new = data.get("old_password"), data.get("new_password1")
        if old and new and old == new:
            self.add_error("new_password1", _("現在のパスワードとは異なるパスワードを指定してください。"))
        return data


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("確認コード"),
        max_length=16,
        help_text=_("認証アプリに表示される6桁の数字、またはバックアップコード"),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )

    def clean_code(self) -> str:
        code = "".join(self.cleaned_data["code"].split())
        if not code.isalnum():
            raise ValidationError(
                _("確認コードは数字（またはバックアップコードの英数字）で入力してください。")
            )
        return code


def role_choices(actor: Any) -> list[tuple[str, str]]:
    return [(v, str(label)) for v, label in R.choices if v != R.JLIS_STAFF or is_jlis(actor)]


class OperatorCreateForm(GroupedForm, forms.Form):
    groups = [
        (_("アカウント"), ["username", "role"]),
        (_("氏名と連絡先"), ["last_name", "first_name", "email"]),
    ]

    username = forms.RegexField(
        label=_("ユーザー名"),
        max_length=150,
        regex=r"^[A-Za-z0-9_.@+-]+$",
        error_messages={"invalid": _("ユーザー名は半角英数字と _ . @ + - で入力してください。")},
    )
    last_name = forms.CharField(label=_("姓"), max_length=150)
    first_name = forms.CharField(label=_("名"), max_length=150, required=False)
    email = forms.EmailField(label=_("メールアドレス"), required=False)
    role = forms.ChoiceField(label=_("役割"))

    def __init__(self, *args: Any, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)
        # No preselected role: the first choice would otherwise be the most powerful one.
        role.choices = [("", _("選択してください"))]
        role.choices += [c for c in role_choices(actor) if c[0] != R.JLIS_STAFF]

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        if re.fullmatch(r"\d{11,12}", username):
            raise ValidationError(_("個人番号や住民票コードのような11〜12桁の数字はユーザー名に使えません。"))
        return username


class OperatorEditForm(GroupedForm, forms.Form):
    groups = [
        (_("氏名と連絡先"), ["last_name", "first_name", "email"]),
        (_("権限"), ["role", "is_active"]),
    ]

    last_name = forms.CharField(label=_("姓"), max_length=150)
    first_name = forms.CharField(label=_("名"), max_length=150, required=False)
    email = forms.EmailField(label=_("メールアドレス"), required=False)
    role = forms.ChoiceField(label=_("役割"))
    is_active = forms.BooleanField(label=_("有効"), required=False)

    def __init__(self, *args: Any, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        role = self.fields["role"]
        assert isinstance(role, forms.ChoiceField)
        role.choices = role_choices(actor)


class AdministratorChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        name = obj.get_full_name() or obj.username
        return gettext("%(name)s（%(role)s）") % {"name": name, "role": obj.get_role_display()}


class TerminalForm(GroupedForm, forms.Form):
    groups = [(_("端末"), ["name", "location", "is_active"]), (_("管理"), ["administrator"])]

    name = forms.CharField(label=_("端末名"), max_length=100)
    location = forms.CharField(label=_("設置場所"), max_length=200)
    administrator = AdministratorChoiceField(label=_("端末管理者"), queryset=Operator.objects.none())
    is_active = forms.BooleanField(label=_("有効"), required=False, initial=True)

    def __init__(self, *args: Any, provider_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["administrator"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = Operator.objects.filter(
            provider_id=provider_id, is_active=True, role__in=[R.TERMINAL_ADMIN, R.PROVIDER_ADMIN]
        ).order_by("username")


class ScopeForm(forms.Form):
    """One block of fields per operation: granted?, all terminals or some, all card APs or some."""

    def __init__(self, *args: Any, provider_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        terminals = Terminal.objects.filter(provider_id=provider_id).order_by("name")
        card_aps = card_aps_loadable_by(provider_id).order_by("name")
        for op, label in Operation.choices:
            self.fields[f"{op}__on"] = forms.BooleanField(label=label, required=False)
            self.fields[f"{op}__all_terminals"] = forms.BooleanField(label=_("すべての端末"), required=False)
            self.fields[f"{op}__terminals"] = forms.ModelMultipleChoiceField(
                label=_("端末"), queryset=terminals, required=False, widget=forms.CheckboxSelectMultiple
            )
            self.fields[f"{op}__all_card_aps"] = forms.BooleanField(
                label=_("すべてのカードAP"), required=False
            )
            self.fields[f"{op}__card_aps"] = forms.ModelMultipleChoiceField(
                label=_("カードAP"), queryset=card_aps, required=False, widget=forms.CheckboxSelectMultiple
            )

    def blocks(self) -> list[dict[str, Any]]:
        return [
            {
                "label": label,
                **{
                    k: self[f"{op}__{k}"]
                    for k in ("on", "all_terminals", "terminals", "all_card_aps", "card_aps")
                },
            }
            for op, label in Operation.choices
        ]

    def grants(self) -> dict[str, dict[str, Any]]:
        out = {}
        for op in Operation.values:
            if self.cleaned_data.get(f"{op}__on"):
                out[op] = {
                    "all_terminals": self.cleaned_data[f"{op}__all_terminals"],
                    "terminals": [t.pk for t in self.cleaned_data[f"{op}__terminals"]],
                    "all_card_aps": self.cleaned_data[f"{op}__all_card_aps"],
                    "card_aps": [a.pk for a in self.cleaned_data[f"{op}__card_aps"]],
                }
        return out

    @classmethod
    def initial_from(cls, operator: Operator) -> dict[str, Any]:
        initial: dict[str, Any] = {}
        for s in operator.scopes.prefetch_related("terminals", "card_aps"):
            initial[f"{s.operation}__on"] = True
            initial[f"{s.operation}__all_terminals"] = s.all_terminals
            initial[f"{s.operation}__terminals"] = list(s.terminals.all())
            initial[f"{s.operation}__all_card_aps"] = s.all_card_aps
            initial[f"{s.operation}__card_aps"] = list(s.card_aps.all())
        return initial


# Search dates outside this range would overflow when turned into Japan-time instants.
AUDIT_DATE_MIN = dt.date(2000, 1, 1)
AUDIT_DATE_MAX = dt.date(2999, 12, 31)


def _audit_date_in_range(value: dt.date) -> None:
    if not AUDIT_DATE_MIN <= value <= AUDIT_DATE_MAX:
        raise ValidationError(
            _("%(min)s から %(max)s までの日付を指定してください。"),
            code="date_range",
            params={"min": AUDIT_DATE_MIN.isoformat(), "max": AUDIT_DATE_MAX.isoformat()},
        )


class AuditSearchForm(forms.Form):
    date_from = forms.DateField(
        label=_("開始日（日本時間）"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[_audit_date_in_range],
    )
    date_to = forms.DateField(
        label=_("終了日（日本時間）"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        validators=[_audit_date_in_range],
    )
    actor = forms.CharField(label=_("実行者"), required=False, max_length=150)
    action = forms.CharField(label=_("操作"), required=False, max_length=64)
    text = forms.CharField(label=_("キーワード"), required=False, max_length=200)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError(_("開始日は終了日以前の日付にしてください。"))
        return data


def apply_validation_error(form: forms.BaseForm, exc: ValidationError) -> None:
    """Show a service's ValidationError on the form: each message beside its field, or at the top
    when the field is not on this form."""
    by_field = exc.error_dict if hasattr(exc, "error_dict") else {None: exc.error_list}
    for name, errors in by_field.items():
        for error in errors:
            form.add_error(name if name in form.fields else None, error)
