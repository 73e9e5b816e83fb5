"""Forms of the provider-facing registry pages."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cardap.custom_input import MAX_INPUT_BYTES
from cardap.models import CARD_AP_REQUEST_FIELDS, AutoLoadPreset, CardAP, Provider
from operators.formlayout import GroupedForm
from operators.policy import card_aps_loadable_by

STANDARD_TYPES = "type=A,C,D"


class CardAPRequestForm(GroupedForm, forms.ModelForm):
    groups = [
        (_("基本情報"), ["name", "type", "area", "purpose"]),
        (_("データの構成"), ["structure", "file_size", "record_count", "record_length", "data_layout"],
         STANDARD_TYPES),
        (_("暗証番号"), ["pin_source", "pin_min_length", "pin_max_length", "pin_retry_limit"],
         STANDARD_TYPES),
        (_("利用者番号"), ["user_number_source", "user_number_length", "user_number_charset"],
         STANDARD_TYPES),
        (_("入力ファイル（独自カードAP）"), ["input_upload", "input_format", "input_file"], "type=custom"),
        (_("容量"), ["memory_requested"]),
    ]
    show_when = {
        "file_size": "structure=binary",
        "record_count": "structure=records",
        "record_length": "structure=records",
        "pin_min_length": "pin_source=holder,system",
        "pin_max_length": "pin_source=holder,system",
        "pin_retry_limit": "pin_source=holder,system",
    }

    input_upload = forms.FileField(
        label=_("入力ファイルをアップロード（独自カードAP）"),
        required=False,
        help_text=_("YAML（.yaml/.yml）または JSON（.json）、64KiBまで。本文欄に貼り付けても構いません。"),
    )

    class Meta:
        model = CardAP
        fields = list(CARD_AP_REQUEST_FIELDS)
        widgets = {
            "purpose": forms.Textarea(attrs={"rows": 3}),
            "data_layout": forms.Textarea(attrs={"rows": 3}),
            "input_file": forms.Textarea(attrs={"rows": 14}),
            "input_format": forms.Select(choices=[("", "-"), ("yaml", "YAML"), ("json", "JSON")]),
        }

    def __init__(self, *args: object, provider: Provider, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.provider = provider
        if not provider.is_municipality:
            area = self.fields["area"]
            assert isinstance(area, forms.ChoiceField)
            area.choices = [(CardAP.Area.EXTENDED, CardAP.Area.EXTENDED.label)]
        self.fields["purpose"].required = True
        kind = self.fields["type"]
        assert isinstance(kind, forms.ChoiceField)
        kind.choices = [("", _("選択してください")), *CardAP.Type.choices]

    def clean(self) -> dict:
        data = super().clean() or {}
        upload = data.get("input_upload")
        if upload:
            if upload.size > MAX_INPUT_BYTES:
                self.add_error(
                    "input_upload",
                    _("入力ファイルが大きすぎます（上限 %(kib)dKiB）。") % {"kib": MAX_INPUT_BYTES // 1024},
                )
            else:
                try:
                    data["input_file"] = upload.read().decode("utf-8")
                except UnicodeDecodeError:
                    self.add_error("input_upload", _("入力ファイルは UTF-8 のテキストにしてください。"))
                if not data.get("input_format"):
                    data["input_format"] = "json" if upload.name.lower().endswith(".json") else "yaml"
        return data

    def request_fields(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in self.Meta.fields}


class PresetForm(GroupedForm, forms.Form):
    name = forms.CharField(label=_("名称"), max_length=100)
    description = forms.CharField(label=_("説明"), max_length=200, required=False)
    card_aps = forms.ModelMultipleChoiceField(
        label=_("カードAP"), queryset=CardAP.objects.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(
        self, *args: object, provider: Provider, preset: AutoLoadPreset | None = None, **kwargs: object
    ):
        if preset is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": preset.name,
                "description": preset.description,
                "card_aps": [ap.pk for ap in preset.ordered_card_aps()],
            }
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["card_aps"].queryset = card_aps_loadable_by(provider).order_by("name")  # type: ignore[attr-defined]
