"""Reads for the loading app: a terminal's presence (is its agent connected, what reader and
card it reports), shown live on the operator's terminal pages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from loading.models import TerminalPresence
from operators.models import Terminal

STATE_LABELS: dict[str, Promise] = {
    "online": _("接続中"),
    "offline": _("未接続"),
    "never": _("接続履歴なし"),
}


@dataclass(frozen=True)
class Presence:
    terminal_id: int
    state: str  # online | offline | never
    last_poll_at: dt.datetime | None
    agent_version: str
    reader: str
    card_present: bool
    atr: str
    taken_over_at: dt.datetime | None

    @property
    def online(self) -> bool:
        return self.state == "online"

    @property
    def state_label(self) -> str:
        return str(STATE_LABELS[self.state])

    def as_json(self) -> dict[str, Any]:
        local = timezone.localtime
        return {
            "terminal": self.terminal_id,
            "state": self.state,
            "state_label": self.state_label,
            "last_poll_at": local(self.last_poll_at).isoformat() if self.last_poll_at else None,
            "last_poll_display": local(self.last_poll_at).strftime("%Y-%m-%d %H:%M:%S")
            if self.last_poll_at
            else "-",
            "agent_version": self.agent_version,
            "reader": self.reader,
            "card_present": self.card_present,
            "card_label": str(_("カードあり") if self.card_present else _("カードなし")),
            "atr": self.atr,
        }


def online_window() -> dt.timedelta:
    """An agent that polled within this long is connected (a poll lasts RELAY_POLL_SECONDS)."""
    return dt.timedelta(seconds=settings.RELAY_POLL_SECONDS + 15)


def terminal_presence(terminal: Terminal, *, now: dt.datetime | None = None) -> Presence:
    """The presence of ``terminal``'s agent (the caller has checked that it may see the terminal,
    e.g. with ``operators.selectors.terminals_for``)."""
    row = TerminalPresence.objects.filter(terminal_id=terminal.pk).first()
    if row is None or row.last_poll_at is None:
        return Presence(terminal.pk, "never", None, "", "", False, "", None)
    now = now or timezone.now()
    state = "online" if now - row.last_poll_at <= online_window() else "offline"
    return Presence(
        terminal.pk,
        state,
        row.last_poll_at,
        row.agent_version,
        row.reader,
        row.card_present and state == "online",
        row.atr if state == "online" else "",
        row.taken_over_at,
    )
