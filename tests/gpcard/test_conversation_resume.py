"""gpcard.conversation.resume: feeding the live generator the next exchange gives exactly what a
fresh replay over the longer transcript gives, and a diverging transcript is still refused."""

from __future__ import annotations

import pytest

from gpcard.conversation import Batch, Conversation, ConversationError, replay, resume


def counting(calls: list[int]) -> Conversation:
    calls.append(1)
    first = yield Batch((b"\x00\xa4\x04\x00\x01\x01",), "one")
    second = yield Batch((b"\x80\xca\x00" + first[0][:1],), "two")
    return {"got": [first[0].hex(), second[0].hex()]}


def test_resume_equals_a_fresh_replay_and_runs_the_program_once():
    calls: list[int] = []
    where = replay(counting(calls), [])
    one = (where.batch.digest(), [b"\x07\x90\x00"])  # type: ignore[union-attr]
    resumed = resume(where, one[1])
    fresh = replay(counting([]), [one])
    assert resumed.batch == fresh.batch and resumed.batches == fresh.batches
    assert resumed.batch.label == "two"  # type: ignore[union-attr]
    done = resume(resumed, [b"\x08\x90\x00"])
    again = replay(counting([]), [one, (fresh.batch.digest(), [b"\x08\x90\x00"])])  # type: ignore[union-attr]
    assert done.finished and done.outcome == again.outcome == {"got": ["079000", "089000"]}
    assert [b.label for b in done.batches] == ["one", "two"] == [b.label for b in again.batches]
    assert calls == [1]  # one generator served all three steps


def test_resume_refuses_what_replay_refuses():
    where = replay(counting([]), [])
    with pytest.raises(ConversationError):
        resume(where, [b"\x90\x00", b"\x90\x00"])  # more responses than commands
    one = (where.batch.digest(), [b"\x07\x90\x00"])  # type: ignore[union-attr]
    second = replay(counting([]), [one]).batch
    finished = replay(counting([]), [one, (second.digest(), [b"\x08\x90\x00"])])  # type: ignore[union-attr]
    assert finished.finished
    with pytest.raises(ConversationError, match="nothing is awaiting"):
        resume(finished, [b"\x90\x00"])
    with pytest.raises(ConversationError, match="differs on replay"):
        replay(counting([]), [("0" * 64, [b"\x90\x00"])])
