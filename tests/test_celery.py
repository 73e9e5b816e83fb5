"""A real Celery worker on the configured broker (Redis in CI) runs a task end to end."""
import pytest
from django.conf import settings

from cardap.tasks import ping


@pytest.mark.celery
@pytest.mark.skipif(settings.CELERY_TASK_ALWAYS_EAGER, reason="no broker configured (embedded default)")
def test_task_round_trip_through_worker(celery_worker_real):
    assert ping.delay().get(timeout=20) == "pong"


def test_eager_mode_without_broker():
    if settings.CELERY_TASK_ALWAYS_EAGER:
        assert ping.delay().get() == "pong"
    else:
        assert settings.CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
