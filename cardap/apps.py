from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CardapConfig(AppConfig):
    name = "cardap"
    verbose_name = _("カードAP登録")
