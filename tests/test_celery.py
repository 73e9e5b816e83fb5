"""A real Celery worker on the configured broker (Redis in CI) runs a task end to end."""
import pytest
from django.conf import settings

from cardap.tasks import ping


@pytest.mark.celery
@pytest.mark.skipif(settings.CELERY_TASK_ALWAYS_EAGER, reason="no broker configured (embedded default)")
def test_task_round_trip_through_worker(celery_worker_real):
    assert ping.delay().get(timeout=20) == "pong"


def test_eager_mode_runs_the_task_in_process():
    """The embedded default (no broker): a task runs in the calling process, no server needed."""
    from celery.result import EagerResult

    from config.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    try:
        result = ping.delay()
    finally:
        app.conf.task_always_eager = before
    assert isinstance(result, EagerResult) and result.get() == "pong"
