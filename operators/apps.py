from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


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
