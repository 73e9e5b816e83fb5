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
