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
    return {"maintenance_windows": windows, "service_closed_message": closed}
