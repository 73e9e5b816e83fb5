"""The conversation engine: programs replayed over their transcript, one round trip at a time,
against the virtual card; bad agent input refused without changing anything."""

from __future__ import annotations

import pytest

from gpcard import gp
from gpcard.aid import ISD_AID
from gpcard.conversation import Batch, Conversation, expect_success, run_batch, run_in_process
from gpcard.script import encode_response_script, parse_command_script
from loading import engine
from loading.engine import Context, ConversationRefused, Ended, Script, TerminalBusy
from loading.models import CardConversation
from operators.models import Terminal
from vcard import VirtualCard


@pytest.fixture
def terminal(world) -> Terminal:
    return Terminal.objects.create(
        provider=world.city, name="窓口1", location="本庁舎1階", administrator=world.city_admin
    )


def _run(script: Script, card: VirtualCard, *, keep: int | None = None) -> bytes:
    commands = [c.encode() for c in parse_command_script(script.body)]
    responses = run_batch(Batch(tuple(commands)), card.transmit)
    return encode_response_script(responses[:keep] if keep is not None else responses)


def _identity(card: VirtualCard) -> tuple[str, str]:
    """The card's IIN and CIN read directly, independently of the engine."""
    assert card.transmit(gp.select(ISD_AID).encode())[-2:] == b"\x90\x00"
    iin = gp.parse_iin(card.transmit(gp.get_data(gp.TAG_IIN).encode())[:-2])
    cin = gp.parse_cin(card.transmit(gp.get_data(gp.TAG_CIN).encode())[:-2])
    return iin.hex(), cin.hex()


@pytest.mark.django_db
def test_identify_over_the_engine_matches_the_card(terminal):
    card = VirtualCard.create()
    conv = engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    step = engine.next_script(str(conv.id))
    assert isinstance(step, Script) and step.seq == 0 and step.commands == 3
    done = engine.submit_responses(
        conversation_id=str(conv.id), terminal_id=terminal.pk, seq=0, body=_run(step, card)
    )
    assert isinstance(done, Ended) and done.state == "finished"
    iin, cin = _identity(card)
    assert done.outcome == {"iin": iin, "cin": cin}
    conv.refresh_from_db()
    assert conv.round_trips == 1 and not conv.is_open and conv.finished_at is not None


@pytest.mark.django_db
def test_one_open_conversation_per_terminal(terminal):
    engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    with pytest.raises(TerminalBusy):
        engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    assert CardConversation.objects.filter(terminal=terminal).count() == 1


@pytest.mark.django_db
def test_a_repeated_post_gets_the_same_answer_and_records_nothing_twice(terminal):
    card = VirtualCard.create()
    conv = engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    step = engine.next_script(str(conv.id))
    body = _run(step, card)
    first = engine.submit_responses(conversation_id=str(conv.id), terminal_id=terminal.pk, seq=0, body=body)
    again = engine.submit_responses(conversation_id=str(conv.id), terminal_id=terminal.pk, seq=0, body=body)
    assert first == again
    conv.refresh_from_db()
    assert conv.round_trips == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("seq", "body", "code"),
    [
        (0, b"\x01\x02", "malformed"),
        (0, bytes.fromhex("AA00"), "malformed"),
        (3, encode_response_script([bytes.fromhex("9000")]), "wrong-script"),
        (0, encode_response_script([bytes.fromhex("9000")] * 4), "too-many"),
        (0, encode_response_script([bytes.fromhex("6A82"), bytes.fromhex("9000")]), "went-on"),
        (0, b"\xab" + b"\x00" * (engine.MAX_RESPONSE_SCRIPT + 1), "too-large"),
    ],
)
def test_bad_agent_input_is_refused_and_changes_nothing(terminal, seq, body, code):
    conv = engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    engine.next_script(str(conv.id))
    with pytest.raises(ConversationRefused) as refused:
        engine.submit_responses(conversation_id=str(conv.id), terminal_id=terminal.pk, seq=seq, body=body)
    assert refused.value.code == code and refused.value.status >= 400
    conv.refresh_from_db()
    assert conv.round_trips == 0 and conv.state == "running"


@pytest.mark.django_db
def test_another_terminal_cannot_answer_a_conversation(terminal, world):
    other = Terminal.objects.create(
        provider=world.shop, name="店頭", location="本店", administrator=world.shop_admin
    )
    conv = engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    step = engine.next_script(str(conv.id))
    with pytest.raises(ConversationRefused) as refused:
        engine.submit_responses(
            conversation_id=str(conv.id),
            terminal_id=other.pk,
            seq=0,
            body=_run(step, VirtualCard.create()),
        )
    assert refused.value.status == 404


@pytest.mark.django_db
def test_card_silent_mid_script_fails_the_conversation(terminal):
    conv = engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    step = engine.next_script(str(conv.id))
    ended = engine.submit_responses(
        conversation_id=str(conv.id),
        terminal_id=terminal.pk,
        seq=0,
        body=_run(step, VirtualCard.create(), keep=1),
    )
    assert isinstance(ended, Ended) and ended.state == "failed"
    conv.refresh_from_db()
    assert conv.error_code == "card-lost"


# A two-step program whose second batch depends on the first answer and on the seed.
@engine.program("test-two-steps")
def _two_steps(ctx: Context) -> Conversation:
    first = Batch((gp.select(ISD_AID).encode(),), "select")
    expect_success(first, (yield first))
    second = Batch((gp.get_data(gp.TAG_CIN).encode(), gp.select(ctx.host_challenge(0)).encode()), "cin")
    raw = yield second
    return {"cin_sw": raw[0][-2:].hex(), "secret": ctx.secret("pin")}


@pytest.mark.django_db
def test_replay_across_round_trips_and_secrets_wiped_at_the_end(terminal):
    card = VirtualCard.create()
    conv = engine.start_conversation(
        terminal_id=terminal.pk, program_name="test-two-steps", params={}, secrets_={"pin": "4321"}
    )
    conv.refresh_from_db()
    assert conv.sealed_secrets and "4321" not in conv.sealed_secrets
    step = engine.next_script(str(conv.id))
    assert engine.next_script(str(conv.id)) == step  # asking again hands out the same script
    step = engine.submit_responses(
        conversation_id=str(conv.id), terminal_id=terminal.pk, seq=0, body=_run(step, card)
    )
    assert isinstance(step, Script) and step.seq == 1 and step.label == "cin"
    ended = engine.submit_responses(
        conversation_id=str(conv.id), terminal_id=terminal.pk, seq=1, body=_run(step, card)
    )
    assert isinstance(ended, Ended) and ended.outcome == {"cin_sw": "9000", "secret": "4321"}
    conv.refresh_from_db()
    assert conv.sealed_secrets == "" and conv.round_trips == 2


def test_run_in_process_counts_round_trips():
    card = VirtualCard.create()
    outcome, trips = run_in_process(
        engine.get_program("identify")(Context("x", 0, {}, b"s" * 32)), card.transmit
    )
    assert trips == 1 and outcome["cin"] == _identity(card)[1]


@pytest.mark.django_db
def test_interrupt_ends_an_open_conversation_once(terminal):
    conv = engine.start_conversation(terminal_id=terminal.pk, program_name="identify", params={})
    assert engine.interrupt(str(conv.id), "agent-silent") is True
    assert engine.interrupt(str(conv.id), "agent-silent") is False
    conv.refresh_from_db()
    assert conv.state == "interrupted" and conv.error_code == "agent-silent"
