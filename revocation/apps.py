from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RevocationConfig(AppConfig):
    name = "revocation"
    verbose_name = _("失効情報")
