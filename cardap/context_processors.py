"""Template context for every page: upcoming maintenance windows for the banner (R8.2)."""

from __future__ import annotations

from django.http import HttpRequest


def maintenance_banner(request: HttpRequest) -> dict[str, object]:
    from cardap.service_calendar import upcoming_windows

    try:
        windows = list(upcoming_windows()[:3])
    except Exception:  # noqa: BLE001 - a banner must never break a page (e.g. before migrate)
        windows = []
    return {"maintenance_windows": windows}
