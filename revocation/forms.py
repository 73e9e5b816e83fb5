from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from cardap.apikeys import validate_networks


class APIKeyForm(forms.Form):
    name = forms.CharField(label=_("名称（用途）"), max_length=100)
    allowed_networks = forms.CharField(
        label=_("接続元制限（CIDR、1行に1つ。空欄は制限なし）"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "192.0.2.0/24"}),
    )

    def clean_allowed_networks(self) -> list[str]:
        raw = [part.strip() for part in self.cleaned_data["allowed_networks"].replace(",", "\n").splitlines()]
        entries = [part for part in raw if part]
        try:
            return validate_networks(entries)
        except ValueError:
            bad = next(e for e in entries if not _is_network(e))
            raise forms.ValidationError(
                _("「%(entry)s」はネットワークアドレス（例: 192.0.2.0/24）ではありません。"),
                params={"entry": bad},
            ) from None


def _is_network(entry: str) -> bool:
    try:
        validate_networks([entry])
    except ValueError:
        return False
    return True
