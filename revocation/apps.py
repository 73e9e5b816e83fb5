from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RevocationConfig(AppConfig):
    name = "revocation"
    verbose_name = _("失効情報")

    def ready(self) -> None:
        from revocation import checks  # noqa: F401 (registers the system check)
