"""Project-level tasks."""
from celery import shared_task


@shared_task(name="cardap.ping")
def ping() -> str:
    """Round trip through the broker and a worker; used by /healthz?deep=1 and the tests."""
    return "pong"
