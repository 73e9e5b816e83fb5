"""Project-level tasks."""
from celery import shared_task


@shared_task(name="cardap.ping")
def ping() -> str:
    """Round trip through the broker and a worker; used by /healthz?deep=1 and the tests."""
    return "pong"


@shared_task(name="cardap.send_maintenance_notice")
def send_maintenance_notice(window_id: int) -> int:
    """Mail one maintenance notice to the providers (enqueued on commit by the calendar)."""
    from cardap import service_calendar  # the calendar enqueues this task: import it when run

    return service_calendar.send_maintenance_notice(window_id)
