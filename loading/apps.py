from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoadingConfig(AppConfig):
    name = "loading"
    verbose_name = _("搭載・削除")

    def ready(self) -> None:
        from loading import (
            diagnosis,  # noqa: F401 - connects the end-of-conversation receiver
            jobs,  # noqa: F401 - connects the job handlers to the engine's signals
        )
