"""Forms of the card job screens. PIN fields are never rendered back (render_value=False) and
never logged; they travel only into the job's sealed secrets."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from cardap.models import CardAP

PIN_ATTRS = {"autocomplete": "off", "inputmode": "numeric"}


class JobHistoryFilter(forms.Form):
    kind = forms.ChoiceField(label=_("種別"), required=False)
    state = forms.ChoiceField(label=_("状態"), required=False)
    terminal = forms.IntegerField(label=_("端末"), required=False, widget=forms.HiddenInput)
    since = forms.DateField(
        label=_("開始日（から）"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("開始日（まで）"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from loading.models import Job

        super().__init__(*args, **kwargs)
        kind, state = self.fields["kind"], self.fields["state"]
        assert isinstance(kind, forms.ChoiceField) and isinstance(state, forms.ChoiceField)
        kind.choices = [("", _("すべて")), *Job.Kind.choices]
        state.choices = [("", _("すべて")), *Job.State.choices]


def confirm_form(card_aps: list[CardAP], data: Any = None) -> forms.Form:
    """User number and PIN fields for the chosen APs, the consent and the residence confirmation."""
    form = forms.Form(data)
    for ap in card_aps:
        if ap.user_number_source == CardAP.UserNumberSource.SUPPLIED:
            form.fields[f"user_{ap.pk}"] = forms.CharField(
                label=_("利用者番号（%(ap)s）") % {"ap": ap.name}, max_length=ap.user_number_length
            )
        if ap.pin_source == CardAP.PinSource.HOLDER:
            form.fields[f"pin_{ap.pk}"] = forms.CharField(
                label=_("暗証番号（%(ap)s、所有者が入力）") % {"ap": ap.name},
                widget=forms.PasswordInput(attrs=PIN_ATTRS, render_value=False),
                max_length=ap.pin_max_length,
            )
            form.fields[f"pin2_{ap.pk}"] = forms.CharField(
                label=_("暗証番号の確認（もう一度）"),
                widget=forms.PasswordInput(attrs=PIN_ATTRS, render_value=False),
                max_length=ap.pin_max_length,
            )
    if any(ap.area == CardAP.Area.LOCAL for ap in card_aps):
        form.fields["resident"] = forms.BooleanField(
            label=_("この市区町村に住民票があることを確認しました"), required=False
        )
    form.fields["consent"] = forms.BooleanField(
        label=_("カード所有者に内容を説明し、搭載の同意を得ました"), required=False
    )
    form.fields["request_key"] = forms.CharField(widget=forms.HiddenInput)
    return form
