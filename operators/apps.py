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


class OperatorsConfig(AppConfig):
    name = "operators"
    verbose_name = _("操作者")

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from operators.audit import record

        def audit_sign_out(sender: object, request: object, user: object, **kwargs: object) -> None:
            if user is not None:
                record(action="auth.sign_out", request=request, actor=user)  # type: ignore[arg-type]

        user_logged_out.connect(audit_sign_out, dispatch_uid="operators.audit_sign_out", weak=False)

        from django.db.models.signals import post_init, post_save, pre_save
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from operators import otp_secrets

        # TOTP keys are sealed in the database, plain only in memory (operators.otp_secrets).
        post_init.connect(otp_secrets.open_on_load, sender=TOTPDevice, dispatch_uid="operators.totp_open")
        pre_save.connect(otp_secrets.seal_before_save, sender=TOTPDevice, dispatch_uid="operators.totp_seal")
        post_save.connect(
            otp_secrets.reopen_after_save, sender=TOTPDevice, dispatch_uid="operators.totp_reopen"
        )
