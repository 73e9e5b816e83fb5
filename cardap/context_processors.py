"""Template context for every page: upcoming maintenance windows and, when no card operation may
start now, when service resumes (R8) — for the banner in base.html."""
from __future__ import annotations

from django.http import HttpRequest


def maintenance_banner(request: HttpRequest) -> dict[str, object]:
    from cardap.service_calendar import ServiceClosed, check_can_start_job, upcoming_windows

    try:
        windows = list(upcoming_windows()[:3])
        try:
            check_can_start_job()
            closed = ""
        except ServiceClosed as exc:
            closed = exc.message
    except Exception:  # noqa: BLE001 - a banner must never break a page (e.g. before migrate)
        windows, closed = [], ""
    return {"maintenance_windows": windows, "service_closed_message": closed, **demo_banner()}


def demo_banner() -> dict[str, object]:
    """Demo mode is always visible: a banner says so and whether it opened the service hours."""
    from django.conf import settings

    from cardap.service_calendar import hours_opened_by_demo, service_hours

    if not settings.DEMO:
        return {"demo_mode": False}
    h = service_hours()
    return {
        "demo_mode": True,
        "demo_open_hours": hours_opened_by_demo(),
        "service_opens": h.opens.strftime("%H:%M"),
        "service_closes": h.closes.strftime("%H:%M"),
    }
