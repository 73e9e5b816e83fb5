from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoadingConfig(AppConfig):
    name = "loading"
    verbose_name = _("搭載・削除")

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_save

        from loading import (
            diagnosis,  # noqa: F401 - connects the end-of-conversation receiver
            jobs,  # noqa: F401 - connects the job handlers to the engine's signals
            wakeups,
        )

        def terminal_saved(sender: object, instance: object, **kwargs: object) -> None:
            # A revoked or rotated credential, a deactivated terminal: its open poll wakes and
            # finds out at once.
            pk = instance.pk  # type: ignore[attr-defined]
            transaction.on_commit(lambda: wakeups.notify(pk))

        post_save.connect(
            terminal_saved, sender="operators.Terminal", weak=False, dispatch_uid="loading.terminal_saved"
        )
