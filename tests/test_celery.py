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


@pytest.mark.celery
@pytest.mark.skipif(settings.CELERY_TASK_ALWAYS_EAGER, reason="no broker configured (embedded default)")
def test_maintenance_notice_is_mailed_by_a_worker_after_commit(celery_worker_real, world):
    import datetime as dt
    import time

    from django.core import mail
    from django.utils import timezone

    from cardap import service_calendar
    from cardap.models import MaintenanceWindow

    starts = timezone.now() + dt.timedelta(days=1)
    window = service_calendar.schedule_maintenance(
        title="緊急保守", starts_at=starts, ends_at=starts + dt.timedelta(hours=2), urgent=True,
        actor=world.jlis,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and MaintenanceWindow.objects.get(pk=window.pk).notified_at is None:
        time.sleep(0.1)
    assert MaintenanceWindow.objects.get(pk=window.pk).notified_at is not None
    assert sorted(m.to[0] for m in mail.outbox) == ["mnt@city.example.jp", "mnt@shop.example.jp"]
