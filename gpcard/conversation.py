"""Card conversations written as sans-I/O generators (DESIGN.md "The relay").

A card operation is a generator that *yields* a :class:`Batch` of C-APDUs (already wrapped under
the secure channel where there is one), *receives* the R-APDUs the agent got back, and finally
*returns* its outcome::

    def read_identity() -> Conversation:
        responses = yield Batch((select(ISD_AID).encode(), get_data(0x45).encode()), "identify")
        ...
        return {"cin": ...}

The same generator runs in-process (:func:`run_in_process`, tests and benchmarks), through the
relay (the web process that receives the agent's POST replays the generator over the stored
responses, then computes the next batch) and anywhere else a ``transmit`` exists. A generator
must therefore be *deterministic*: given the same responses it yields the same batches (random
values such as the SCP03 host challenge come from its parameters, never from ``secrets``).

The agent runs a batch in order and stops after the first response whose status word is not
:func:`agent_continues` (GP Amendment B: "stops at the first unexpected status word"), so a batch
may come back with fewer responses than it had commands.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import Any

from gpcard.apdu import ResponseAPDU
from gpcard.script import encode_command_script
from gpcard.sw import CardError

__all__ = [
    "Batch",
    "CardLost",
    "Conversation",
    "ConversationError",
    "Replayed",
    "agent_continues",
    "expect_success",
    "replay",
    "run_in_process",
]


class ConversationError(RuntimeError):
    """A conversation cannot go on: its generator diverged on replay, or it was fed too much."""


class CardLost(ConversationError):
    """The card stopped answering in the middle of a batch (pulled out, power lost, reader gone):
    fewer responses came back than commands were sent, the last of them not a stop."""

    code = "card-lost"


@dataclass(frozen=True)
class Batch:
    """One script for the agent: C-APDUs in order and a step label for the job's progress and log
    (a command name, never data)."""

    commands: tuple[bytes, ...]
    label: str = ""

    def __post_init__(self) -> None:
        if not self.commands:
            raise ConversationError("a batch holds at least one command")

    def script(self) -> bytes:
        """The Amendment B command script (tag AA) the agent runs."""
        return encode_command_script(list(self.commands))

    def digest(self) -> str:
        """SHA-256 of the command script: recorded when the batch is sent, compared on replay, so
        a generator that would send something else the second time is caught, not trusted."""
        return hashlib.sha256(self.script()).hexdigest()


# yields Batch, is sent the R-APDUs (list of raw bytes), returns the outcome (JSON-serialisable).
Conversation = Generator[Batch, list[bytes], Any]


def agent_continues(sw: int) -> bool:
    """Status words after which the agent goes on with the next command of a batch: success
    (9000), response bytes still available (61xx) and GET STATUS "more data" (6310)."""
    return sw == 0x9000 or sw >> 8 == 0x61 or sw == 0x6310


def _status_word(response: bytes) -> int:
    if len(response) < 2:
        raise ConversationError("a response has no status word")
    return int.from_bytes(response[-2:], "big")


def expect_success(
    batch: Batch, raw: Sequence[bytes], expect: Sequence[int] = (0x9000,)
) -> list[ResponseAPDU]:
    """The responses to ``batch``, each with an expected status word: raises
    :class:`~gpcard.sw.CardError` at the first other one, :class:`CardLost` when the card stopped
    answering before the end."""
    responses = [ResponseAPDU.parse(r) for r in raw]
    for index, response in enumerate(responses):
        if response.sw not in expect:
            raise CardError(response.sw, command=f"{batch.label} #{index + 1}")
    if len(responses) < len(batch.commands):
        raise CardLost(f"{batch.label}: the card answered {len(responses)} of {len(batch.commands)} commands")
    return responses


def run_batch(batch: Batch, transmit: Callable[[bytes], bytes]) -> list[bytes]:
    """Run one batch the way the agent does: in order, stopping after the first response whose
    status word is unexpected."""
    out: list[bytes] = []
    for command in batch.commands:
        response = transmit(command)
        out.append(response)
        if not agent_continues(_status_word(response)):
            break
    return out


def run_in_process(conversation: Conversation, transmit: Callable[[bytes], bytes]) -> tuple[Any, int]:
    """Drive a conversation against ``transmit`` directly. Returns (outcome, round trips)."""
    trips = 0
    try:
        batch = next(conversation)
        while True:
            trips += 1
            batch = conversation.send(run_batch(batch, transmit))
    except StopIteration as stop:
        return stop.value, trips


@dataclass(frozen=True)
class Replayed:
    """Where a conversation stands after replaying its transcript: the next batch to send, or
    (``finished``) its outcome."""

    finished: bool
    batch: Batch | None = None
    outcome: Any = None


def replay(conversation: Conversation, transcript: Sequence[tuple[str, Sequence[bytes]]]) -> Replayed:
    """Feed a fresh generator the recorded exchanges, ``(digest of the batch sent, responses)``
    each, checking that it yields the same batches as before, and return what comes next."""
    try:
        batch = next(conversation)
        for index, (digest, responses) in enumerate(transcript):
            if batch.digest() != digest:
                raise ConversationError(
                    f"batch {index} differs on replay: the operation is not deterministic"
                )
            if len(responses) > len(batch.commands):
                raise ConversationError(
                    f"batch {index} had {len(batch.commands)} commands but {len(responses)} responses"
                )
            batch = conversation.send(list(responses))
    except StopIteration as stop:
        return Replayed(True, outcome=stop.value)
    return Replayed(False, batch=batch)
