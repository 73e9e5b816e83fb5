"""Writes of the relay: what an agent reports with each poll (terminal presence), take-over of a
terminal by a second agent with the same credential, and supervision of silent agents."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loading import engine, wakeups
from loading.models import CardConversation, TerminalPresence
from operators.audit import record
from operators.models import Terminal

log = logging.getLogger(__name__)

_SESSION = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2}){0,33}$")


class BadState(ValueError):
    """The state an agent reported is not what the protocol describes."""


@dataclass(frozen=True)
class AgentState:
    """What an agent reports with every poll (docs/relay-protocol.md, "The poll")."""

    session: str
    agent: str = ""
    reader: str = ""
    card_present: bool = False
    atr: str = ""

    @classmethod
    def parse(cls, data: Any) -> AgentState:
        if not isinstance(data, dict):
            raise BadState(_("ポーリングの本文はJSONオブジェクトです。"))
        session = data.get("session")
        if not isinstance(session, str) or not _SESSION.match(session):
            raise BadState(_("session は英数字・「-」・「_」の16〜64文字です。"))
        agent = data.get("agent", "")
        reader = data.get("reader", "")
        card = data.get("card_present", False)
        atr = data.get("atr", "")
        if not isinstance(agent, str) or len(agent) > 60:
            raise BadState(_("agent は60文字以内の文字列です。"))
        if not isinstance(reader, str) or len(reader) > 200:
            raise BadState(_("reader は200文字以内の文字列です。"))
        if not isinstance(card, bool):
            raise BadState(_("card_present は true か false です。"))
        if not isinstance(atr, str) or not _HEX.match(atr):
            raise BadState(_("atr は33バイト以内の16進数です。"))
        return cls(session, agent, reader, card, atr.upper() if card else "")


def report_presence(*, terminal: Terminal, state: AgentState, address: str | None) -> bool:
    """Record a poll's report. Returns False when ``state.session`` was taken over by another
    agent (that agent keeps the terminal); a new session takes the terminal over, and the agent
    that held it is woken to be told so."""
    now = timezone.now()
    # The agent holding the terminal polling again (every poll but its first): one UPDATE, which
    # takes the row lock itself; nothing else can have changed for it.
    if (
        TerminalPresence.objects.filter(terminal=terminal, agent_session=state.session)
        .exclude(superseded_session=state.session)
        .update(
            agent_version=state.agent,
            agent_address=address,
            reader=state.reader,
            card_present=state.card_present,
            atr=state.atr,
            last_poll_at=now,
        )
    ):
        Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=now)
        return True
    with transaction.atomic():
        presence, created = TerminalPresence.objects.select_for_update().get_or_create(terminal=terminal)
        if state.session == presence.superseded_session:
            return False
        taken_over = bool(presence.agent_session) and presence.agent_session != state.session
        if taken_over:
            presence.superseded_session = presence.agent_session
            presence.taken_over_at = now
            record(
                action="relay.take_over",
                actor=f"terminal:{terminal.name}",
                provider_id=terminal.provider_id,
                target=terminal.name,
                ip=address,
                detail={"agent": state.agent},
            )
            transaction.on_commit(lambda: wakeups.notify(terminal.pk))
        if created or taken_over or presence.agent_session != state.session:
            presence.connected_at = now
        presence.agent_session = state.session
        presence.agent_version = state.agent
        presence.agent_address = address
        presence.reader = state.reader
        presence.card_present = state.card_present
        presence.atr = state.atr
        presence.last_poll_at = now
        presence.save()
        Terminal.objects.filter(pk=terminal.pk).update(last_seen_at=now)
    return True


def holds_terminal(*, terminal_id: int, session: str) -> bool:
    """Whether ``session`` is the agent session holding the terminal now."""
    return TerminalPresence.objects.filter(terminal_id=terminal_id, agent_session=session).exists()


def interrupt_silent_conversations(*, now: dt.datetime | None = None) -> list[str]:
    """Interrupt the open conversations whose agent went silent: running, with no word from the
    agent for RELAY_AGENT_SILENCE_SECONDS (``agent-silent``), or queued and never picked up in
    RELAY_PICKUP_SECONDS (``agent-offline``). Returns the ids interrupted."""
    now = now or timezone.now()
    silent = now - dt.timedelta(seconds=settings.RELAY_AGENT_SILENCE_SECONDS)
    unclaimed = now - dt.timedelta(seconds=settings.RELAY_PICKUP_SECONDS)
    S = CardConversation.State
    candidates = [
        (str(pk), "agent-silent", silent)
        for pk in CardConversation.objects.filter(state=S.RUNNING, last_activity_at__lt=silent).values_list(
            "pk", flat=True
        )
    ] + [
        (str(pk), "agent-offline", unclaimed)
        for pk in CardConversation.objects.filter(state=S.QUEUED, created_at__lt=unclaimed).values_list(
            "pk", flat=True
        )
    ]
    done = []
    for pk, reason, idle_before in candidates:
        if engine.interrupt(pk, reason, idle_before=idle_before):
            log.info("conversation %s interrupted: %s", pk, reason)
            done.append(pk)
    return done
