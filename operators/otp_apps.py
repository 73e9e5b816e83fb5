"""django-otp's plugins as installed here: the same apps under Japanese admin section and model
names (the model names in locale/ja, as django-otp writes them in English only)."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _
from django_otp.plugins.otp_static.apps import DefaultConfig as OTPStaticDefault
from django_otp.plugins.otp_totp.apps import DefaultConfig as OTPTOTPDefault


class OTPTOTPConfig(OTPTOTPDefault):
    """django-otp's TOTP plugin under a Japanese admin section name."""

    verbose_name = _("認証アプリ（TOTP）")

    def ready(self) -> None:
        _translate_model_names(self, ["TOTP device", "TOTP devices"])


class OTPStaticConfig(OTPStaticDefault):
    verbose_name = _("バックアップコード")

    def ready(self) -> None:
        _translate_model_names(self, ["static device", "static devices", "static token", "static tokens"])


def _translate_model_names(config: AppConfig, names: list[str]) -> None:
    """django-otp names its models in plain English strings. The same English made lazy-
    translatable (locale/ja) reads in Japanese, and equals the original when untranslated, so
    migrations (made with translation off) see no change."""
    lazy = {name: _(name) for name in names}  # noqa: INT001 (msgids defined by django-otp)
    for model in config.get_models():
        meta = model._meta
        meta.verbose_name = lazy.get(str(meta.verbose_name), meta.verbose_name)
        meta.verbose_name_plural = lazy.get(str(meta.verbose_name_plural), meta.verbose_name_plural)


