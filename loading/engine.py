"""The conversation engine: starts card conversations and advances them one agent round trip at
a time, in whichever web process receives the agent's POST (DESIGN.md "The relay").

A *program* is a function ``(Context) -> gpcard.conversation.Conversation`` registered under a
name with :func:`program`. Each round trip rebuilds the program's generator, replays it over the
stored transcript (checking it yields the same batches as before) and feeds it the new responses;
the next batch goes back to the agent, or the generator's return value becomes the outcome.

Signals, sent inside the transaction that saves the change:
- ``conversation_progressed(conversation)``: a batch was handed to the agent (``step_label``);
- ``conversation_ended(conversation)``: finished, failed, interrupted or cancelled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.dispatch import Signal

from gpcard.conversation import (
    Batch,
    Conversation,
    ConversationError,
    Replayed,
    agent_continues,
    replay,
    resume,
)
from gpcard.script import ScriptError, parse_response_script
from gpcard.sw import CardError
from loading import wakeups
from loading.models import CardConversation

log = logging.getLogger(__name__)

conversation_progressed = Signal()
conversation_ended = Signal()

MAX_RESPONSE_SCRIPT = 256 * 1024  # a response script is at most a few KB; refuse anything absurd


class ConversationRefused(Exception):
    """What an agent sent cannot be accepted. ``code`` is stable (for the relay's 4xx and the
    audit), ``message`` says precisely what is wrong."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class TerminalBusy(Exception):
    """The terminal already has an open conversation (one card operation at a time)."""


# --- programs ---------------------------------------------------------------------------------


@dataclass
class Context:
    """What a program may know: its parameters, its secrets (opened only when asked for) and a
    deterministic source of SCP03 host challenges."""

    conversation_id: str
    terminal_id: int
    params: dict[str, Any]
    seed: bytes
    _sealed: str = field(default="", repr=False)
    # What a program computes once per round trip and needs at several steps of its replay
    # (e.g. the per-card SCP03 keys): lives as long as this Context, i.e. one agent POST, in
    # memory only.
    memo: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    def host_challenge(self, n: int = 0) -> bytes:
        return hmac.new(self.seed, f"host-challenge/{n}".encode(), hashlib.sha256).digest()[:8]

    def secret(self, name: str) -> str:
        if not self._sealed:
            raise KeyError(name)
        from cardap.keystore import get_keystore

        values = json.loads(get_keystore().open_sealed(self.conversation_id, self._sealed))
        return str(values[name])


Program = Callable[[Context], Conversation]
_PROGRAMS: dict[str, Program] = {}


def program(name: str) -> Callable[[Program], Program]:
    def register(factory: Program) -> Program:
        if name in _PROGRAMS and _PROGRAMS[name] is not factory:
            raise ValueError(f"program {name!r} is registered twice")
        _PROGRAMS[name] = factory
        return factory

    return register


def get_program(name: str) -> Program:
    from loading import programs  # noqa: F401 - registers the built-in programs

    try:
        return _PROGRAMS[name]
    except KeyError:
        raise ValueError(f"no card program named {name!r}") from None


def _context(conv: CardConversation) -> Context:
    return Context(str(conv.id), conv.terminal_id, conv.params, bytes.fromhex(conv.seed), conv.sealed_secrets)


# --- what the agent is sent -------------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """The next command script for the agent; ``seq`` numbers it within its conversation."""

    conversation_id: str
    seq: int
    label: str
    body: bytes
    commands: int


@dataclass(frozen=True)
class Ended:
    conversation_id: str
    state: str
    outcome: Any


Step = Script | Ended


def start_conversation(
    *,
    terminal_id: int,
    program_name: str,
    params: dict[str, Any],
    secrets_: dict[str, str] | None = None,
) -> CardConversation:
    """Queue a conversation for a terminal and wake its agent once the transaction commits.
    Raises TerminalBusy when one is already open there."""
    get_program(program_name)
    json.dumps(params)  # parameters are stored as JSON: fail here, not in the relay
    conv = CardConversation(terminal_id=terminal_id, program=program_name, params=params)
    conv.seed = secrets.token_bytes(32).hex()
    if secrets_:
        from cardap.keystore import get_keystore

        conv.sealed_secrets = get_keystore().seal(str(conv.id), json.dumps(secrets_).encode())
    try:
        with transaction.atomic():
            conv.save(force_insert=True)
    except IntegrityError:
        raise TerminalBusy(terminal_id) from None
    transaction.on_commit(lambda: wakeups.notify(terminal_id))
    return conv


def _end_with_error(conv: CardConversation, exc: Exception) -> Ended:
    detail: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc)[:500]}
    sw = getattr(exc, "sw", None)
    if isinstance(exc, CardError) or isinstance(sw, int):
        detail["sw"] = f"{sw:04X}"
    conv.fail(getattr(exc, "code", None) or type(exc).__name__, detail)
    return Ended(str(conv.id), conv.state, conv.outcome)


def _replay(conv: CardConversation) -> Replayed:
    return replay(get_program(conv.program)(_context(conv)), conv.exchanges())


def _advance(conv: CardConversation, step: Callable[[], Replayed] | None = None) -> Step:
    """Replay the program over the transcript (or take ``step``'s result: the live generator fed
    the exchange just recorded); hand out the next batch or end the conversation. The batches
    replayed are left on ``conv.replayed_batches`` for the handlers of the signals (the job's step
    log), so they need not run the program once more."""
    try:
        where = step() if step is not None else _replay(conv)
    except Exception as exc:  # a card answer the program refuses, or a program defect
        if not isinstance(exc, ConversationError | CardError | ValueError | LookupError):
            log.exception("card program %s failed in conversation %s", conv.program, conv.id)
        ended = _end_with_error(conv, exc)
        conv.save()
        conversation_ended.send(sender=CardConversation, conversation=conv)
        return ended
    conv.replayed_batches = where.batches
    if where.finished:
        conv.finish(where.outcome)
        conv.save()
        conversation_ended.send(sender=CardConversation, conversation=conv)
        return Ended(str(conv.id), conv.state, conv.outcome)
    batch: Batch = where.batch  # type: ignore[assignment]
    conv.mark_running(batch.label)
    conv.save()
    conversation_progressed.send(sender=CardConversation, conversation=conv)
    return Script(str(conv.id), len(conv.transcript), batch.label, batch.script(), len(batch.commands))


def next_script(conversation_id: str, *, agent_session: str = "") -> Step:
    """The script the agent should run now (the first one when the conversation is queued).

    ``agent_session`` names the agent asking (the relay passes it). A conversation whose scripts
    went to one agent session is never handed to another: the new agent cannot know whether the
    old one ran the script, and running it twice is not safe; the conversation is interrupted
    (``agent-changed``) instead and the operator starts again."""
    with transaction.atomic():
        conv = CardConversation.objects.select_for_update().get(pk=conversation_id)
        if not conv.is_open:
            return Ended(str(conv.id), conv.state, conv.outcome)
        if agent_session:
            if conv.agent_session and conv.agent_session != agent_session:
                conv.interrupt("agent-changed")
                conv.save()
                conversation_ended.send(sender=CardConversation, conversation=conv)
                return Ended(str(conv.id), conv.state, conv.outcome)
            conv.agent_session = agent_session
        return _advance(conv)


def submit_responses(
    *, conversation_id: str, terminal_id: int, seq: int, body: bytes, agent_session: str = ""
) -> Step:
    """Take the agent's response script for script ``seq`` and return what comes next.

    A POST repeated after a lost answer (same seq, same body) gets the same answer again and runs
    nothing twice; anything else that does not fit what was sent is refused and changes nothing."""
    if len(body) > MAX_RESPONSE_SCRIPT:
        raise ConversationRefused(
            "too-large", f"response script of {len(body)} bytes is too large", status=413
        )
    answer_digest = hashlib.sha256(body).hexdigest()
    with transaction.atomic():
        conv = CardConversation.objects.select_for_update().filter(pk=conversation_id).first()
        if conv is None or conv.terminal_id != terminal_id:
            raise ConversationRefused(
                "unknown-conversation", "no such conversation for this terminal", status=404
            )
        if agent_session and conv.agent_session and conv.agent_session != agent_session:
            raise ConversationRefused(
                "other-agent", "this conversation's scripts went to another agent session", status=409
            )
        done = len(conv.transcript)
        if seq == done - 1 and conv.transcript[-1]["answer_digest"] == answer_digest:
            # The same answer again: the agent did not get our reply. Recompute it.
            return _advance(conv) if conv.is_open else Ended(str(conv.id), conv.state, conv.outcome)
        if not conv.is_open:
            raise ConversationRefused("ended", f"the conversation has ended ({conv.state})", status=409)
        if conv.state == CardConversation.State.QUEUED:
            raise ConversationRefused(
                "never-sent", f"script {seq} was never sent: the conversation has not started", status=409
            )
        if seq != done:
            raise ConversationRefused(
                "wrong-script",
                f"script {seq} is not the one awaiting responses (script {done})",
                status=409,
            )
        try:
            response_script = parse_response_script(body)
        except ScriptError as exc:
            raise ConversationRefused("malformed", f"not a response script: {exc}") from None
        where = _replay(conv)
        if where.finished or where.batch is None:
            raise ConversationRefused("wrong-script", "no script is awaiting responses", status=409)
        batch = where.batch
        responses = [r.encode() for r in response_script.responses]
        if len(responses) > len(batch.commands):
            raise ConversationRefused(
                "too-many", f"{len(responses)} responses to a script of {len(batch.commands)} commands"
            )
        # Fewer responses than commands whose last status word is not a stop means the card
        # stopped answering mid-script (pulled, torn); the program sees exactly that.
        if any(not agent_continues(r.sw) for r in response_script.responses[:-1]):
            raise ConversationRefused("went-on", "the agent went on after an unexpected status word")
        conv.record_exchange(
            digest=batch.digest(),
            label=batch.label,
            sent=len(batch.commands),
            responses=responses,
            answer_digest=answer_digest,
        )
        # The generator that was just checked against the transcript goes on from here.
        return _advance(conv, lambda: resume(where, responses))


def interrupt(conversation_id: str, reason: str, *, idle_before: datetime | None = None) -> bool:
    """End an open conversation as interrupted (agent silent, card pulled, process died).
    With ``idle_before``, only if nothing happened in it since then (checked under the row lock,
    so an agent answering at that moment is not cut off)."""
    with transaction.atomic():
        conv = CardConversation.objects.select_for_update().filter(pk=conversation_id).first()
        if conv is None or not conv.is_open:
            return False
        if idle_before is not None and (conv.last_activity_at or conv.created_at) >= idle_before:
            return False
        conv.interrupt(reason)
        conv.save()
        conversation_ended.send(sender=CardConversation, conversation=conv)
        return True


def open_conversation_for(terminal_id: int) -> CardConversation | None:
    """The terminal's open conversation (its id and state; the rest, the transcript above all, is
    loaded only if asked for), or None."""
    return (
        CardConversation.objects.filter(terminal_id=terminal_id, state__in=CardConversation.OPEN_STATES)
        .only("id", "terminal_id", "state")
        .first()
    )
