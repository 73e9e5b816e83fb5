"""The daily revocation sync (Celery beat, settings.CELERY_BEAT_SCHEDULE["revocation-daily-sync"])."""

from celery import shared_task

from revocation import services


@shared_task(name="revocation.sync")
def sync() -> list[dict[str, object]]:
    """Take in every new feed from the configured source; returns what happened to each."""
    return [
        {"id": feed.pk, "number": feed.number, "state": feed.state, "reason": feed.reason_code}
        for feed in services.sync_configured_source()
    ]
