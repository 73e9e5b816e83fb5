"""The real ``cardap-agent`` process (pip-installed in its own virtualenv) against the virtual
card through pyscard + pcscd + vpcd, and against a real ASGI server process over HTTP.
Run under ``flock /tmp/cardap-pcsc.lock`` (one pcscd, two reader slots, shared)."""

from __future__ import annotations

import pytest
from django.conf import settings

from loading import engine
from loading.models import CardConversation, TerminalPresence
from operators.services import revoke_terminal_credential
from tests.pcsc.readers import card_present, wait_for
from tests.relay import programs  # noqa: F401 - the test programs, also in the server process
from tests.relay.conftest import AgentTerminal, make_terminal, wait_presence
from tests.relay.live import POLL_SECONDS, CuttableProxy, wait_until
from vcard import VirtualCard
from vcard.vpcd import VpcdClient

pytestmark = pytest.mark.pcsc


def run(at: AgentTerminal, program: str, timeout: float = POLL_SECONDS + 20) -> CardConversation:
    conv = engine.start_conversation(terminal_id=at.terminal.pk, program_name=program, params={})

    def ended() -> bool:
        conv.refresh_from_db()
        return not conv.is_open

    wait_until(ended, timeout, f"conversation {program} to end")
    return conv


def card_identity(card: VirtualCard) -> dict[str, str]:
    info = card.info()
    return {"cin": str(info["cin"]).lower()}


def test_scripts_run_in_order_and_stop_at_the_first_unexpected_sw(
    relay_server, agent_terminal, vpcd_card, start_agent
):
    agent = start_agent(agent_terminal, relay_server.url, vpcd_card.reader)
    presence = wait_presence(agent_terminal.terminal, card_present=True)
    assert presence.reader == vpcd_card.reader and presence.atr.startswith("3B")
    assert presence.agent_version.startswith("cardap-agent/")

    conv = run(agent_terminal, "identify")
    assert conv.state == "finished", (conv.error_code, conv.outcome, agent.log())
    cin = card_identity(vpcd_card.card)["cin"]
    assert conv.outcome["cin"] == cin

    conv = run(agent_terminal, "test-two-scripts")
    assert conv.state == "finished" and conv.round_trips == 2
    assert conv.outcome["cin_first"] == conv.outcome["cin_second"] == cin
    assert [e["label"] for e in conv.transcript] == ["select-cin", "iin-cin"]

    conv = run(agent_terminal, "test-stop-at-sw")
    assert conv.state == "finished"
    assert conv.outcome == {"answered": 2, "sws": ["9000", "6A82"]}  # the third command never ran
    agent.wait_log("stopped at SW 6A82")
    log = agent.log()
    assert "connected to" in log and "card present" in log
    # The log says what happened, never what the card said.
    assert cin not in log.lower() and "a4040008" not in log.lower()


def test_network_cut_and_server_restart_mid_wait(relay_server, agent_terminal, vpcd_card, start_agent):
    proxy = CuttableProxy(relay_server.port)
    try:
        agent = start_agent(agent_terminal, proxy.url, vpcd_card.reader)
        wait_presence(agent_terminal.terminal, card_present=True)
        agent.wait_log("connected to")
        proxy.cut()  # the network goes down while the poll waits
        agent.wait_log("server unreachable")
        proxy.restore()
        wait_until(lambda: agent.log().count("connected to") >= 2, 60, "the agent to reconnect")
        assert run(agent_terminal, "identify").state == "finished"

        relay_server.stop(kill=True)  # the server dies while the poll waits
        wait_until(lambda: agent.log().count("server unreachable") >= 2, 30, "the agent to notice")
        relay_server.start()
        wait_until(lambda: agent.log().count("connected to") >= 3, 60, "the agent to reconnect")
        conv = run(agent_terminal, "test-two-scripts")
        assert conv.state == "finished", (conv.error_code, agent.log())
        assert agent.proc is not None and agent.proc.poll() is None
    finally:
        proxy.close()


def test_reader_unplugged_and_back(relay_server, agent_terminal, vpcd_card, start_agent):
    agent = start_agent(agent_terminal, relay_server.url, vpcd_card.reader)
    wait_presence(agent_terminal.terminal, card_present=True)
    port = vpcd_card.client.port
    vpcd_card.client.close()  # the virtual card is stopped: the reader is empty
    wait_presence(agent_terminal.terminal, card_present=False, atr="")
    agent.wait_log("no card")
    conv = run(agent_terminal, "identify")
    assert conv.state == "failed" and conv.error_code == "card-lost"

    client = VpcdClient(vpcd_card.card, port=port)
    client.start()
    vpcd_card.client = client
    wait_for(lambda: card_present(vpcd_card.reader), 15, "the card back in the reader")
    wait_presence(agent_terminal.terminal, card_present=True)
    assert run(agent_terminal, "identify").state == "finished"
    assert agent.proc is not None and agent.proc.poll() is None


def test_revoked_credential_stops_the_agent(relay_server, agent_terminal, vpcd_card, start_agent, world):
    agent = start_agent(agent_terminal, relay_server.url, vpcd_card.reader)
    wait_presence(agent_terminal.terminal, card_present=True)
    agent.wait_log("connected to")
    revoke_terminal_credential(actor=world.city_admin, terminal=agent_terminal.terminal)
    assert agent.exit_code(POLL_SECONDS + 15 if not settings.REDIS_URL else 10) == 3
    assert "refused the credential" in agent.log()


def test_another_terminals_job_is_invisible_and_a_second_agent_takes_over(
    relay_server, agent_terminal, vpcd_card, start_agent, world, tmp_path
):
    other = make_terminal(world, tmp_path, name="店頭", provider=world.shop, admin=world.shop_admin)
    first = start_agent(agent_terminal, relay_server.url, vpcd_card.reader, "first")
    wait_presence(agent_terminal.terminal, card_present=True)
    first.wait_log("connected to")
    conv = engine.start_conversation(terminal_id=other.terminal.pk, program_name="identify", params={})
    polled = TerminalPresence.objects.get(terminal=agent_terminal.terminal).last_poll_at
    wait_until(
        lambda: TerminalPresence.objects.get(terminal=agent_terminal.terminal).last_poll_at != polled,
        POLL_SECONDS + 10,
        "a whole poll to go by",
    )
    conv.refresh_from_db()
    assert conv.state == "queued" and conv.agent_session == ""
    assert "commands, ran" not in first.log()

    second = start_agent(agent_terminal, relay_server.url, vpcd_card.reader, "second")
    assert first.exit_code(20) == 4
    assert "took over" in first.log()
    wait_until(lambda: "connected to" in second.log(), 20, "the second agent")
    assert run(agent_terminal, "identify").state == "finished"
    assert second.proc is not None and second.proc.poll() is None
