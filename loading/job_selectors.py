"""Reads of card jobs, always scoped to the caller: J-LIS staff and auditors of the whole system
see every job, everyone else only their own provider's (another provider's job is a 404)."""

from __future__ import annotations

import importlib
from typing import Any

from django.db.models import QuerySet

from cardap.models import CardAP, CardAPInstallation
from gpcard.operations import CardContent
from loading.models import Job
from operators.models import Operator, Terminal
from operators.policy import OPERATING_ROLES, R


def jobs_for(user: Any) -> QuerySet[Job]:
    qs = Job.objects.select_related("terminal", "operator", "provider")
    if not getattr(user, "is_authenticated", False):
        return qs.none()
    if user.role == R.JLIS_STAFF or (user.role == R.AUDITOR and user.provider_id is None):
        return qs
    if user.provider_id is None:
        return qs.none()
    return qs.filter(provider_id=user.provider_id)


def operating_terminals(user: Any) -> QuerySet[Terminal]:
    """Terminals of the caller's provider on which the caller may run card jobs."""
    if (
        not getattr(user, "is_authenticated", False)
        or user.role not in OPERATING_ROLES
        or user.provider_id is None
    ):
        return Terminal.objects.none()
    return Terminal.objects.filter(provider_id=user.provider_id, is_active=True).order_by("name")


def last_read(terminal: Terminal, operator: Operator) -> Job | None:
    """The last successful read at this terminal by this provider (what the operator chooses from)."""
    return (
        Job.objects.filter(
            terminal=terminal, provider_id=operator.provider_id or 0, state=Job.State.SUCCEEDED
        )
        .exclude(content=None)
        .order_by("-finished_at")
        .first()
    )


def card_view(job: Job, provider_id: int | None) -> dict[str, Any]:
    """Both areas with used/free, this provider's APs on the card with their state, and how many
    other APs there are (never whose)."""
    assert job.content is not None
    content = CardContent.from_json(job.content)
    on_card = {aid: lc for area in content.areas.values() for aid, lc in area.instances.items()}
    mine_q = CardAP.objects.filter(aid__in=list(on_card))
    visible = [
        ap
        for ap in mine_q.select_related("provider")
        if ap.provider_id == provider_id or ap.shares.filter(provider_id=provider_id or 0).exists()
    ]
    rows = {
        r.card_ap_id: r
        for r in CardAPInstallation.objects.filter(card_id=content.cin, card_ap__in=visible).exclude(
            state="deleted"
        )
    }
    areas = []
    for name in ("local", "extended"):
        a = content.areas[name]
        areas.append(
            {
                "key": name,
                "label": CardAP.Area.LOCAL.label if name == "local" else CardAP.Area.EXTENDED.label,
                "quota": a.quota,
                "used": a.used,
                "free": a.free,
            }
        )
    return {
        "cin": content.cin,
        "areas": areas,
        "mine": [
            {"ap": ap, "installation": rows.get(ap.pk), "life_cycle": on_card.get(ap.aid or "")}
            for ap in visible
        ],
        "others": len(on_card) - len(visible),
        "content": content,
    }


def terminal_presence(terminal: Terminal) -> dict[str, Any] | None:
    """The agent's live state (connected, reader, card present) when the relay provides it."""
    try:
        module = importlib.import_module("loading.selectors")
    except ImportError:
        return None
    presence = getattr(module, "terminal_presence", None)
    return presence(terminal) if presence is not None else None
