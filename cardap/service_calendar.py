"""The operations calendar (R8): service hours, the year-end closure, planned maintenance windows,
and failure notices to providers.

Loading calls `check_can_start_job()` before any card operation: it raises ServiceClosed, whose
message says when service resumes.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

import holidays
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from cardap import tasks
from cardap.models import FailureIncident, MaintenanceWindow, Provider
from operators.audit import record

log = logging.getLogger(__name__)
# Japan time: the project's one time zone (settings.TIME_ZONE); service hours are Japan time.
JST = timezone.get_default_timezone()


@dataclass(frozen=True)
class ServiceHours:
    opens: dt.time
    closes: dt.time
    closed_from: tuple[int, int]  # (month, day), inclusive
    closed_to: tuple[int, int]


def _parse_time(name: str, raw: str) -> dt.time:
    try:
        return dt.time.fromisoformat(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a time like 08:00") from None


def _parse_month_day(raw: str) -> tuple[int, int]:
    month, day = (int(x) for x in raw.split("-"))
    dt.date(2000, month, day)  # validates (2000 is a leap year, so 02-29 is accepted)
    return month, day


@functools.cache
def _hours(opens: str, closes: str, closed: str) -> ServiceHours:
    o = _parse_time("SERVICE_OPEN_TIME", opens)
    c = _parse_time("SERVICE_CLOSE_TIME", closes)
    if c <= o:
        raise ImproperlyConfigured("SERVICE_CLOSE_TIME must be after SERVICE_OPEN_TIME")
    try:
        start, end = closed.split("..")
        return ServiceHours(o, c, _parse_month_day(start), _parse_month_day(end))
    except ValueError:
        raise ImproperlyConfigured(f"SERVICE_CLOSED_PERIOD={closed!r} is not like 12-29..01-03") from None


def service_hours() -> ServiceHours:
    return _hours(settings.SERVICE_OPEN_TIME, settings.SERVICE_CLOSE_TIME, settings.SERVICE_CLOSED_PERIOD)


def _jst(at: dt.datetime | None) -> dt.datetime:
    at = at or timezone.now()
    if timezone.is_naive(at):
        raise ValueError("aware datetime required")
    return at.astimezone(JST)


def in_closed_period(day: dt.date) -> bool:
    h = service_hours()
    md = (day.month, day.day)
    if h.closed_from <= h.closed_to:
        return h.closed_from <= md <= h.closed_to
    return md >= h.closed_from or md <= h.closed_to  # wraps the new year


def in_service_hours(at: dt.datetime | None = None) -> bool:
    local = _jst(at)
    h = service_hours()
    return not in_closed_period(local.date()) and h.opens <= local.time() < h.closes


def active_window(at: dt.datetime | None = None) -> MaintenanceWindow | None:
    at = at or timezone.now()
    return (
        MaintenanceWindow.objects.filter(cancelled_at__isnull=True, starts_at__lte=at, ends_at__gt=at)
        .order_by("-ends_at")
        .first()
    )


def hours_opened_by_demo() -> bool:
    """Demo mode (`DEMO_OPEN_ALL_HOURS`, on by default with CARDAP_DEMO=1) lets card operations
    start at any hour and during the year-end closure, so a first run at 05:00 works; planned
    maintenance windows still apply. Never outside demo mode (the settings refuse it)."""
    return bool(settings.DEMO and settings.DEMO_OPEN_ALL_HOURS)


def is_open(at: dt.datetime | None = None) -> bool:
    """Whether a card operation may start at `at`: inside service hours and no maintenance."""
    at = at or timezone.now()
    return (hours_opened_by_demo() or in_service_hours(at)) and active_window(at) is None


def next_opening(at: dt.datetime | None = None) -> dt.datetime:
    """The first moment at or after `at` when the service is open (Japan time)."""
    local = _jst(at)
    h = service_hours()
    any_hour = hours_opened_by_demo()
    for _step in range(400):  # bounded: at most a closed period plus chained windows
        day = local.date()
        if not any_hour and (in_closed_period(day) or local.time() >= h.closes):
            local = dt.datetime.combine(day + dt.timedelta(days=1), h.opens, JST)
            continue
        if not any_hour and local.time() < h.opens:
            local = dt.datetime.combine(day, h.opens, JST)
            continue
        window = active_window(local)
        if window is not None:
            local = window.ends_at.astimezone(JST)
            continue
        return local
    raise RuntimeError("no opening found within 400 steps")  # pragma: no cover


class ServiceClosed(Exception):
    def __init__(self, message: str, *, resumes_at: dt.datetime, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.resumes_at = resumes_at
        self.reason = reason  # "hours" | "closed_period" | "maintenance"


def format_jst(at: dt.datetime) -> str:
    return at.astimezone(JST).strftime("%Y-%m-%d %H:%M")


def check_can_start_job(at: dt.datetime | None = None) -> None:
    """Raise ServiceClosed when no card operation may start at `at`, saying when service resumes."""
    at = at or timezone.now()
    if is_open(at):
        return
    resumes = next_opening(at)
    window = active_window(at)
    if window is not None:
        reason = "maintenance"
        message = _("計画保守中（%(title)s）のため、カード操作を開始できません。%(when)s に再開します。") % {
            "title": window.title,
            "when": format_jst(resumes),
        }
    elif in_closed_period(_jst(at).date()) and not hours_opened_by_demo():
        reason = "closed_period"
        message = _("年末年始の休止期間のため、カード操作を開始できません。%(when)s に再開します。") % {
            "when": format_jst(resumes)
        }
    else:
        h = service_hours()
        reason = "hours"
        message = _(
            "サービス時間（%(opens)s〜%(closes)s）外のため、"
            "カード操作を開始できません。%(when)s に再開します。"
        ) % {
            "opens": h.opens.strftime("%H:%M"),
            "closes": h.closes.strftime("%H:%M"),
            "when": format_jst(resumes),
        }
    raise ServiceClosed(message, resumes_at=resumes, reason=reason)


# --- business days and planned maintenance (R8.2) ---------------------------------------------


@functools.cache
def _japan_holidays(year: int) -> holidays.HolidayBase:
    return holidays.country_holidays("JP", years=year)


def is_business_day(day: dt.date) -> bool:
    """Weekdays that are not Japanese national holidays nor in the year-end closure."""
    return day.weekday() < 5 and day not in _japan_holidays(day.year) and not in_closed_period(day)


def nth_business_day_after(day: dt.date, n: int) -> dt.date:
    current = day
    counted = 0
    while counted < n:
        current += dt.timedelta(days=1)
        if is_business_day(current):
            counted += 1
    return current


def earliest_planned_start(now: dt.datetime | None = None) -> dt.date:
    """A planned (non-urgent) window may start on this date (JST) or later: the announcement day is
    not counted, so there are MAINTENANCE_NOTICE_BUSINESS_DAYS full business days of notice."""
    return nth_business_day_after(_jst(now).date(), settings.MAINTENANCE_NOTICE_BUSINESS_DAYS)


@transaction.atomic
def schedule_maintenance(
    *,
    title: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime,
    description: str = "",
    urgent: bool = False,
    actor: object = None,
    request: object = None,
    now: dt.datetime | None = None,
) -> MaintenanceWindow:
    """Record a maintenance window and mail every provider's maintenance address (on commit)."""
    window = MaintenanceWindow(
        title=title, description=description, starts_at=starts_at, ends_at=ends_at, urgent=urgent
    )
    return register_window(window=window, actor=actor, request=request, now=now)


@transaction.atomic
def register_window(
    *, window: MaintenanceWindow, actor: object = None, request: object = None, now: dt.datetime | None = None
) -> MaintenanceWindow:
    """Validate and save a new (unsaved) window, audit it, and mail the notice after commit."""
    now = now or timezone.now()
    validate_window(starts_at=window.starts_at, ends_at=window.ends_at, urgent=window.urgent, now=now)
    window.created_by = getattr(actor, "username", "") or ""
    window.save()
    _audit_window("maintenance.scheduled", window, actor, request)
    pk = window.pk
    # Mail is a worker's job, never the admin request's: one task per notice, after commit.
    transaction.on_commit(lambda: tasks.send_maintenance_notice.delay(pk))
    return window


def validate_window(*, starts_at: dt.datetime, ends_at: dt.datetime, urgent: bool, now: dt.datetime) -> None:
    if ends_at <= starts_at:
        raise ValidationError({"ends_at": _("終了日時は開始日時より後にしてください。")})
    if starts_at < now:
        raise ValidationError({"starts_at": _("開始日時が過去です。")})
    earliest = earliest_planned_start(now)
    if not urgent and _jst(starts_at).date() < earliest:
        raise ValidationError(
            {
                "starts_at": _(
                    "計画保守は%(n)d営業日前までに通知が必要です。"
                    "%(date)s 以降を指定するか、緊急として登録してください。"
                )
                % {"n": settings.MAINTENANCE_NOTICE_BUSINESS_DAYS, "date": earliest.isoformat()}
            }
        )


def _audit_window(action: str, window: MaintenanceWindow, actor: object, request: object) -> None:
    record(
        action=action,
        actor=actor,
        request=request,  # type: ignore[arg-type]
        target=f"maintenance:{window.pk}",
        detail={
            "title": window.title,
            "starts_at": window.starts_at.isoformat(),
            "ends_at": window.ends_at.isoformat(),
            "urgent": window.urgent,
        },
    )


@transaction.atomic
def cancel_maintenance(*, window: MaintenanceWindow, actor: object = None, request: object = None) -> None:
    if window.cancelled_at is None:
        window.cancelled_at = timezone.now()
        window.save(update_fields=["cancelled_at"])
        _audit_window("maintenance.cancelled", window, actor, request)


def send_maintenance_notice(window_id: int) -> int:
    """Mail the window to every current provider's maintenance address over one connection;
    returns how many sent. A notice already sent (a redelivered task) is not sent again."""
    window = MaintenanceWindow.objects.get(pk=window_id)
    if window.notified_at is not None:
        return 0
    providers = Provider.objects.exclude(status=Provider.Status.ENDED).exclude(maintenance_email="")
    subject = _("【カードAP搭載システム】計画保守のお知らせ: %(title)s") % {"title": window.title}
    body = _(
        "カードAP搭載システムの計画保守を次のとおり実施します。\n\n件名: %(title)s\n"
        "期間: %(start)s 〜 %(end)s（日本時間）\n"
        "%(urgent)s\n%(description)s\n\nこの間、カードAPの搭載・削除はできません。"
    ) % {
        "title": window.title,
        "start": format_jst(window.starts_at),
        "end": format_jst(window.ends_at),
        "urgent": _("※緊急の保守です。") if window.urgent else "",
        "description": window.description,
    }
    connection = get_connection()
    notices = [
        EmailMessage(subject, body, to=[p.maintenance_email], connection=connection)
        for p in providers
    ]
    sent = connection.send_messages(notices) or 0
    MaintenanceWindow.objects.filter(pk=window.pk).update(notified_at=timezone.now())
    return sent


def upcoming_windows(now: dt.datetime | None = None, days: int | None = None) -> QuerySet[MaintenanceWindow]:
    """Windows not yet over that start within the banner horizon."""
    now = now or timezone.now()
    horizon = now + dt.timedelta(days=days or settings.MAINTENANCE_BANNER_DAYS)
    return MaintenanceWindow.objects.filter(
        cancelled_at__isnull=True, ends_at__gt=now, starts_at__lte=horizon
    )


# --- failure notices (R8.3) --------------------------------------------------------------------


def notify_failure(provider: Provider, incident_key: str, summary: str, detail: str = "") -> bool:
    """Mail the provider's failure contact once per incident (`incident_key`, e.g.
    "terminal-failures:42:2027-03-01"); later calls only count occurrences. True when mailed."""
    with transaction.atomic():
        incident, created = FailureIncident.objects.get_or_create(
            provider=provider,
            incident_key=incident_key[:200],
            defaults={"summary": summary[:200], "detail": detail},
        )
        if not created:
            # In the database, not from the row read above: concurrent reports all count.
            FailureIncident.objects.filter(pk=incident.pk).update(occurrences=F("occurrences") + 1)
            return False
        record(
            action="failure.detected",
            actor="system",
            provider_id=provider.pk,
            target=f"incident:{incident.pk}",
            detail={"key": incident.incident_key, "summary": incident.summary},
        )
    address = provider.failure_email or provider.operations_email
    if not address:
        log.warning("provider %s has no failure contact; incident %s not mailed", provider.pk, incident.pk)
        return False
    subject = _("【カードAP搭載システム】障害のお知らせ: %(summary)s") % {"summary": incident.summary}
    body = _(
        "カードAP搭載システムで、貴団体に影響する障害を検知しました。\n\n"
        "概要: %(summary)s\n検知日時: %(at)s（日本時間）\n\n%(detail)s"
    ) % {"summary": incident.summary, "at": format_jst(incident.first_seen_at), "detail": incident.detail}
    EmailMessage(subject, body, to=[address]).send()
    FailureIncident.objects.filter(pk=incident.pk).update(notified_at=timezone.now())
    return True
