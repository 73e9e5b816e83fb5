"""Fault diagnosis for real through the whole stack: the ASGI server process (uvicorn) runs the
probe, the real ``cardap-agent`` carries it through pyscard + pcscd + vpcd to the virtual card
with the fault set. Every class, its Japanese advice on the result page, and the card unchanged
by the diagnosis (no card / no reader / another card's ATR come from the agent's own report).
Run under ``flock /tmp/cardap-pcsc.lock`` (one pcscd, two reader slots, shared)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from gpcard.diagnosis import FaultClass
from loading import diagnosis as services
from loading.advice import ADVICE
from loading.models import Diagnosis
from loading.relay_services import interrupt_silent_conversations
from tests.conftest import signed_in
from tests.loading.diagnosis_support import (
    CASES,
    always_open,
    card_content,
    grant_diagnosis,
    prepare,
    seed_master_keys,
)
from tests.pcsc.readers import PcscCard, card_present, insert_card, list_readers, vpcd_ports
from tests.relay.conftest import AgentTerminal, wait_presence
from tests.relay.live import POLL_SECONDS, wait_until
from vcard import VirtualCard
from vcard.card import CardConfig

pytestmark = pytest.mark.pcsc
OTHER_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")  # a contactless storage card


@pytest.fixture
def diagnosing(world, settings, relay_server, agent_terminal, pcscd) -> AgentTerminal:
    always_open(settings)
    seed_master_keys()
    grant_diagnosis(world.city_operator)
    return agent_terminal


@contextlib.contextmanager
def in_reader(card: VirtualCard) -> Iterator[PcscCard]:
    pc = insert_card(card)
    with contextlib.suppress(Exception):  # the agent owns the card: drop the test's connection
        pc.connection.disconnect()  # type: ignore[attr-defined]
    try:
        yield pc
    finally:
        pc.close()


def diagnose(world, at: AgentTerminal, *, supervise: bool = False) -> Diagnosis:
    """Start as the operator's page does (the service takes the agent's report) and wait for the
    server process to conclude. ``supervise``: also run the relay's supervision (the periodic
    task that interrupts conversations whose agent went silent), as production does."""
    diag = services.start_diagnosis(operator=world.city_operator, terminal=at.terminal)

    def done() -> bool:
        if supervise:
            interrupt_silent_conversations()
        diag.refresh_from_db()
        return diag.state == Diagnosis.State.DONE

    wait_until(done, POLL_SECONDS + 40, f"diagnosis {diag.reference} to conclude")
    return diag


def check_page(world, diag: Diagnosis, expected: FaultClass) -> None:
    html = signed_in(world.city_operator).get(f"/diagnosis/{diag.reference}/").content.decode()
    assert diag.reference in html
    advice = ADVICE[expected]
    assert str(advice.title) in html and str(advice.meaning) in html  # Japanese by default
    for label in advice.action_labels:
        assert str(label) in html


@pytest.mark.parametrize(("case", "faults", "expected", "failed_step"), CASES, ids=[c[0] for c in CASES])
def test_each_card_fault_through_the_relay_and_pcscd(
    world, settings, diagnosing, relay_server, start_agent, case, faults, expected, failed_step
):
    mute = case == "mute"
    if mute:
        # A mute card never answers: the reader waits on it and the agent with it, so the relay's
        # supervision ends the conversation (agent silent) after this long without a word.
        settings.RELAY_AGENT_SILENCE_SECONDS = 4
        failed_step = "conversation"
    card = VirtualCard.create(CardConfig(faults=faults))
    prepare(world, card, case)
    before = card_content(card)
    with in_reader(card) as pc:
        agent = start_agent(diagnosing, relay_server.url, pc.reader)
        wait_presence(diagnosing.terminal, card_present=True)
        diag = diagnose(world, diagnosing, supervise=mute)
        assert diag.conversation is not None and diag.conversation.round_trips > 0 or mute
        assert diag.fault_class == expected.value, (diag.result, agent.log()[-2000:])
        failed = [s for s in diag.result["steps"] if s["status"] == "failed"]
        if expected == FaultClass.NO_FAULT:
            assert failed == []
        else:
            [only] = failed
            if failed_step:
                assert only["step"] == failed_step
        if case == "pin-blocked":
            assert failed[0]["step"].startswith("ap:") and failed[0]["sw"] == "6983"
        if expected == FaultClass.COMMUNICATION_LOST:
            assert failed[0]["finding"] == ("agent-silent" if mute else "card-lost")
        if not mute:  # the agent's report was checked first: reader, card and its ATR
            assert [s["status"] for s in diag.result["steps"][:3]] == ["passed"] * 3
        if case != "tear":  # a torn card is off until reset; its memory is compared all the same
            assert card.standard_ap_commands == 0
        assert card_content(card) == before  # the diagnosis changed nothing on the card
    check_page(world, diag, expected)


def test_keys_missing_from_the_key_store_through_the_relay(
    world, settings, relay_server, agent_terminal, start_agent, pcscd
):
    always_open(settings)  # no master keys stored: the service has no key for this card
    grant_diagnosis(world.city_operator)
    card = VirtualCard.create()
    before = card_content(card)
    with in_reader(card) as pc:
        start_agent(agent_terminal, relay_server.url, pc.reader)
        wait_presence(agent_terminal.terminal, card_present=True)
        diag = diagnose(world, agent_terminal)
        assert card_content(card) == before
    assert diag.fault_class == FaultClass.KEYS_REJECTED.value
    assert [s["finding"] for s in diag.result["steps"] if s["status"] == "failed"] == ["keys-unknown"]
    check_page(world, diag, FaultClass.KEYS_REJECTED)


def test_a_card_that_is_not_a_my_number_card_by_its_atr(world, diagnosing, relay_server, start_agent):
    card = VirtualCard.create()
    card.ATR = OTHER_ATR  # what the reader tells the agent
    before = card_content(card)
    with in_reader(card) as pc:
        start_agent(diagnosing, relay_server.url, pc.reader)
        wait_presence(diagnosing.terminal, card_present=True, atr=OTHER_ATR.hex().upper())
        diag = diagnose(world, diagnosing)
        assert card_content(card) == before and card.standard_ap_commands == 0
    assert diag.fault_class == FaultClass.NOT_MY_NUMBER_CARD.value
    assert diag.conversation is None  # concluded from the agent's report: nothing sent to the card
    [failed] = [s for s in diag.result["steps"] if s["status"] == "failed"]
    assert failed["step"] == "atr" and failed["detail"]["atr"] == OTHER_ATR.hex().upper()
    check_page(world, diag, FaultClass.NOT_MY_NUMBER_CARD)


def _empty_reader() -> str:
    listed = list_readers()
    empty = [r for r in vpcd_ports() if r in listed and not card_present(r)]
    assert empty, f"no empty vpcd reader among {listed}"
    return empty[0]


def test_no_card_in_the_reader_by_the_agents_report(world, diagnosing, relay_server, start_agent, pcscd):
    reader = _empty_reader()
    start_agent(diagnosing, relay_server.url, reader)
    wait_presence(diagnosing.terminal, reader=reader, card_present=False)
    diag = diagnose(world, diagnosing)
    assert diag.fault_class == FaultClass.NO_CARD.value and diag.conversation is None
    steps = {s["step"]: s["status"] for s in diag.result["steps"]}
    assert (
        steps["reader"] == "passed" and steps["card"] == "failed" and steps["card_manager"] == "not_reached"
    )
    check_page(world, diag, FaultClass.NO_CARD)


def test_the_reader_gone_by_the_agents_report(world, diagnosing, relay_server, start_agent, pcscd):
    gone = "Virtual PCD 99"  # the reader this terminal is set up for is not plugged in
    assert not any(r.startswith(gone) for r in list_readers())
    start_agent(diagnosing, relay_server.url, gone)
    wait_presence(diagnosing.terminal, reader="", card_present=False)
    diag = diagnose(world, diagnosing)
    assert diag.fault_class == FaultClass.NO_READER.value and diag.conversation is None
    assert diag.result["steps"][0] == {"step": "reader", "status": "failed", "finding": "no-reader"}
    check_page(world, diag, FaultClass.NO_READER)
