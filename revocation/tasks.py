"""The daily revocation sync (Celery beat, settings.CELERY_BEAT_SCHEDULE["revocation-daily-sync"])."""

from celery import shared_task

from operators.policy import system_task
from revocation import services


# The feed server being unreachable is retried (10 min, 20 min, 40 min); a refused feed is not
# an error here: it is recorded and J-LIS staff are mailed by the service.
@shared_task(name="revocation.sync", autoretry_for=(OSError,), retry_backoff=600, max_retries=3)
@system_task
def sync() -> list[dict[str, object]]:
    """Take in every new feed from the configured source; returns what happened to each."""
    return [
        {"id": feed.pk, "number": feed.number, "state": feed.state, "reason": feed.reason_code}
        for feed in services.sync_configured_source()
    ]
