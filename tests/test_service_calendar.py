"""Operations calendar (R8) with frozen clocks: hours, year-end closure, maintenance windows
with 10 business days' notice, failure notices once per incident."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import translation

from cardap import service_calendar as cal
from cardap.models import FailureIncident, MaintenanceWindow
from operators.models import AuditEntry

JST = ZoneInfo("Asia/Tokyo")


def jst(*args):
    return dt.datetime(*args, tzinfo=JST)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "at,expected",
    [
        (jst(2027, 3, 1, 7, 59), False),
        (jst(2027, 3, 1, 8, 0), True),
        (jst(2027, 3, 1, 21, 59, 59), True),
        (jst(2027, 3, 1, 22, 0), False),
        (jst(2027, 3, 6, 12, 0), True),  # Saturday: hours apply every day outside the closure
        (jst(2027, 12, 28, 21, 0), True),
        (jst(2027, 12, 29, 12, 0), False),
        (jst(2028, 1, 3, 12, 0), False),
        (jst(2028, 1, 4, 8, 0), True),
    ],
)
def test_is_open(at, expected):
    assert cal.is_open(at) is expected


@pytest.mark.django_db
def test_is_open_accepts_utc_times():
    # 23:30 UTC on 28 Feb is 08:30 JST on 1 March
    assert cal.is_open(dt.datetime(2027, 2, 28, 23, 30, tzinfo=dt.UTC))
    assert not cal.is_open(dt.datetime(2027, 3, 1, 13, 30, tzinfo=dt.UTC))  # 22:30 JST


@pytest.mark.django_db
@pytest.mark.parametrize(
    "at,expected",
    [
        (jst(2027, 3, 1, 6, 0), jst(2027, 3, 1, 8, 0)),
        (jst(2027, 3, 1, 10, 0), jst(2027, 3, 1, 10, 0)),
        (jst(2027, 3, 1, 22, 30), jst(2027, 3, 2, 8, 0)),
        (jst(2027, 12, 28, 22, 0), jst(2028, 1, 4, 8, 0)),
        (jst(2027, 12, 31, 9, 0), jst(2028, 1, 4, 8, 0)),
    ],
)
def test_next_opening(at, expected):
    assert cal.next_opening(at) == expected


@pytest.mark.django_db
def test_configurable_hours(settings):
    settings.SERVICE_OPEN_TIME, settings.SERVICE_CLOSE_TIME, settings.SERVICE_CLOSED_PERIOD = (
        "09:00",
        "17:00",
        "08-13..08-15",
    )
    assert not cal.is_open(jst(2027, 3, 1, 8, 30))
    assert not cal.is_open(jst(2027, 8, 14, 12, 0))
    assert cal.is_open(jst(2027, 12, 30, 12, 0))
    assert cal.next_opening(jst(2027, 8, 13, 10, 0)) == jst(2027, 8, 16, 9, 0)


@pytest.mark.django_db
def test_check_can_start_job_says_when_service_resumes():
    with translation.override("en"), pytest.raises(cal.ServiceClosed) as exc:
        cal.check_can_start_job(jst(2027, 3, 1, 22, 5))
    assert exc.value.reason == "hours"
    assert exc.value.resumes_at == jst(2027, 3, 2, 8, 0)
    assert "2027-03-02 08:00" in exc.value.message
    with pytest.raises(cal.ServiceClosed) as exc:
        cal.check_can_start_job(jst(2027, 12, 30, 12, 0))
    assert exc.value.reason == "closed_period" and "2028-01-04 08:00" in exc.value.message
    cal.check_can_start_job(jst(2027, 3, 2, 9, 0))  # open: no exception


@pytest.mark.parametrize(
    "announced,earliest",
    [
        (dt.date(2027, 3, 1), dt.date(2027, 3, 15)),  # two plain weeks
        (dt.date(2027, 4, 26), dt.date(2027, 5, 14)),  # Golden Week: 4/29, 5/3, 5/4, 5/5 are holidays
        (dt.date(2027, 12, 20), dt.date(2028, 1, 7)),  # year-end closure 12/29–1/3 is not business days
    ],
)
def test_business_day_notice(announced, earliest):
    assert cal.nth_business_day_after(announced, 10) == earliest


def test_national_holidays_come_from_the_library():
    assert not cal.is_business_day(dt.date(2027, 2, 11))  # National Foundation Day (Thursday)
    assert cal.is_business_day(dt.date(2027, 2, 10))


@pytest.mark.django_db
def test_planned_window_needs_ten_business_days_unless_urgent(world, django_capture_on_commit_callbacks):
    with time_machine.travel(jst(2027, 3, 1, 10, 0), tick=False):
        with pytest.raises(ValidationError) as exc:
            cal.schedule_maintenance(
                title="DB更新",
                starts_at=jst(2027, 3, 12, 22, 0),
                ends_at=jst(2027, 3, 13, 6, 0),
                actor=world.jlis,
            )
        assert "2027-03-15" in str(exc.value)
        assert MaintenanceWindow.objects.count() == 0
        with django_capture_on_commit_callbacks() as enqueued:
            window = cal.schedule_maintenance(
                title="DB更新",
                starts_at=jst(2027, 3, 15, 22, 0),
                ends_at=jst(2027, 3, 16, 6, 0),
                actor=world.jlis,
            )
        assert len(enqueued) == 1 and not mail.outbox  # nothing mailed inside the request
        assert cal.send_maintenance_notice(window.pk) == 2  # what the task does (worker: test_celery)
        assert cal.send_maintenance_notice(window.pk) == 0  # a redelivered task mails nobody again
        assert sorted(m.to[0] for m in mail.outbox) == ["mnt@city.example.jp", "mnt@shop.example.jp"]
        assert "DB更新" in mail.outbox[0].subject and "2027-03-15 22:00" in mail.outbox[0].body
        window.refresh_from_db()
        assert window.notified_at is not None
        assert AuditEntry.objects.filter(action="maintenance.scheduled", actor="jlis").exists()
        urgent = cal.schedule_maintenance(
            title="緊急",
            starts_at=jst(2027, 3, 1, 23, 0),
            ends_at=jst(2027, 3, 2, 9, 0),
            urgent=True,
            actor=world.jlis,
        )
        assert urgent.pk


@pytest.mark.django_db
def test_window_order_and_past_start_refused(world):
    with time_machine.travel(jst(2027, 3, 1, 10, 0), tick=False):
        with pytest.raises(ValidationError, match="終了日時"):
            cal.schedule_maintenance(
                title="x", starts_at=jst(2027, 4, 1, 2), ends_at=jst(2027, 4, 1, 1), urgent=True
            )
        with pytest.raises(ValidationError, match="過去"):
            cal.schedule_maintenance(
                title="x", starts_at=jst(2027, 3, 1, 9), ends_at=jst(2027, 3, 1, 11), urgent=True
            )


@pytest.mark.django_db
def test_no_job_inside_a_window_and_resume_after_it(world):
    MaintenanceWindow.objects.create(
        title="保守A", starts_at=jst(2027, 3, 20, 10), ends_at=jst(2027, 3, 20, 12)
    )
    assert not cal.is_open(jst(2027, 3, 20, 11))
    assert cal.next_opening(jst(2027, 3, 20, 11)) == jst(2027, 3, 20, 12)
    with pytest.raises(cal.ServiceClosed) as exc:
        cal.check_can_start_job(jst(2027, 3, 20, 11))
    assert (
        exc.value.reason == "maintenance"
        and "保守A" in exc.value.message
        and "2027-03-20 12:00" in exc.value.message
    )
    # A window running into the night: service resumes at the next morning's opening.
    MaintenanceWindow.objects.create(
        title="保守B", starts_at=jst(2027, 3, 21, 20), ends_at=jst(2027, 3, 21, 23)
    )
    assert cal.next_opening(jst(2027, 3, 21, 21)) == jst(2027, 3, 22, 8)
    # A cancelled window blocks nothing.
    MaintenanceWindow.objects.filter(title="保守A").update(cancelled_at=jst(2027, 3, 19, 9))
    assert cal.is_open(jst(2027, 3, 20, 11))


@pytest.mark.django_db
def test_banner_lists_upcoming_windows(world, login):
    with time_machine.travel(jst(2027, 3, 1, 10, 0), tick=False):
        MaintenanceWindow.objects.create(
            title="来週の保守", starts_at=jst(2027, 3, 8, 22), ends_at=jst(2027, 3, 9, 2)
        )
        MaintenanceWindow.objects.create(
            title="来年の保守", starts_at=jst(2028, 3, 8, 22), ends_at=jst(2028, 3, 9, 2)
        )
        page = login(world.city_operator).get("/").content.decode()
    assert "来週の保守" in page and "2027-03-08 22:00" in page
    assert "来年の保守" not in page


@pytest.mark.django_db
def test_failure_notice_once_per_incident(world):
    assert cal.notify_failure(world.city, "sync-failed:2027-03-01", "失効情報の同期失敗", "詳細")
    assert not cal.notify_failure(world.city, "sync-failed:2027-03-01", "失効情報の同期失敗")
    assert cal.notify_failure(world.shop, "sync-failed:2027-03-01", "失効情報の同期失敗")
    assert [m.to for m in mail.outbox] == [["fail@city.example.jp"], ["fail@shop.example.jp"]]
    incident = FailureIncident.objects.get(provider=world.city)
    assert incident.occurrences == 2 and incident.notified_at is not None


@pytest.mark.django_db
def test_banner_says_when_service_resumes_outside_hours(world, login):
    with time_machine.travel(jst(2027, 3, 1, 23, 0), tick=False):
        page = login(world.city_operator).get("/").content.decode()
    assert "2027-03-02 08:00" in page
    with time_machine.travel(jst(2027, 3, 1, 12, 0), tick=False):
        page = login(world.city_operator).get("/").content.decode()
    assert "再開します" not in page


@pytest.mark.skipif(
    "postgresql" not in __import__("django.conf").conf.settings.DATABASES["default"]["ENGINE"],
    reason="concurrent writers need PostgreSQL",
)
@pytest.mark.django_db(transaction=True)
def test_concurrent_failure_reports_all_count(world):
    import threading

    from django.db import connection

    cal.notify_failure(world.city, "agent-silent:7", "端末応答なし")
    barrier = threading.Barrier(6)

    def report():
        try:
            barrier.wait(timeout=10)
            for _ in range(15):
                cal.notify_failure(world.city, "agent-silent:7", "端末応答なし")
        finally:
            connection.close()

    threads = [threading.Thread(target=report) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert FailureIncident.objects.get(incident_key="agent-silent:7").occurrences == 1 + 6 * 15
