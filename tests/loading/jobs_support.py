"""Shared setup for the card job tests: demo master keys in the key store, approved card APs of
each type, a terminal with an operator allowed everything there, and an in-process stand-in for
the terminal agent that runs the engine's scripts against a virtual card exactly as the agent
does (in order, stopping at an unexpected status word or when the card stops answering)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cardap import services as registry
from cardap.keystore import get_keystore
from cardap.models import CardAP
from gpcard.aid import EXTENDED_AREA_SD_AID, ISD_AID, LOCAL_AREA_SD_AID
from gpcard.conversation import agent_continues
from gpcard.script import encode_response_script, parse_command_script
from loading import engine
from loading.models import Job
from operators.models import Operation, OperatorScope, Terminal
from tests.registry_helpers import request_fields
from vcard import VirtualCard
from vcard.card import CardUnresponsive

# The public demo region master keys (docs/card-protocol.md, "Demo keys").
DEMO_MASTERS = {
    ISD_AID: "00112233445566778899AABBCCDDEEFF",
    LOCAL_AREA_SD_AID: "10112233445566778899AABBCCDDEE01",
    EXTENDED_AREA_SD_AID: "20112233445566778899AABBCCDDEE02",
}
TEMPLATE = (Path(__file__).resolve().parents[2] / "cardap" / "custom_ap" / "template.yaml").read_text()
# The template with twelve more files: a description (= load file data block) of several LOAD blocks.
MORE_FILES = "".join(
    f"""  - fid: "{fid:04X}"
    structure: binary
    size: 16
    read: free
    update: personalisation
"""
    for fid in range(0x10, 0x1C)
)
MULTI_BLOCK = TEMPLATE.replace("    update: pin+mutual\n", "    update: pin+mutual\n" + MORE_FILES, 1)


def open_all_day(settings) -> None:
    """Service hours around the clock, closed only on a day far from today (the rule itself is
    tested in tests/test_service_calendar.py and by the refusal tests here)."""
    far = dt.date.today() + dt.timedelta(days=100)
    settings.SERVICE_OPEN_TIME, settings.SERVICE_CLOSE_TIME = "00:00", "23:59"
    settings.SERVICE_CLOSED_PERIOD = f"{far:%m-%d}..{far:%m-%d}"


def store_demo_masters() -> None:
    store = get_keystore()
    for sd, key in DEMO_MASTERS.items():
        store.put_master_key(sd, 0x30, bytes.fromhex(key))


def approve(provider, actor, jlis, **fields) -> CardAP:
    ap = registry.submit_request(provider=provider, actor=actor, **request_fields(**fields))
    return registry.approve_request(card_ap_id=ap.pk, actor=jlis)


@dataclass
class Setup:
    terminal: Terminal
    a: CardAP  # type A, local area, holder's PIN
    c: CardAP  # type C, extended area
    d: CardAP  # type D, extended area, system-fixed PIN
    x: CardAP  # custom, extended area, multi-block load file


def setup(world) -> Setup:
    store_demo_masters()
    terminal = Terminal.objects.create(
        provider=world.city, name="窓口1", location="本庁舎1階", administrator=world.city_admin
    )
    for op in Operation.values:
        OperatorScope.objects.create(
            operator=world.city_operator, operation=op, all_terminals=True, all_card_aps=True
        )
    a = approve(world.city, world.city_admin, world.jlis, type="A", area="local", name="市民カードA")
    c = approve(world.city, world.city_admin, world.jlis, type="C", area="extended", name="図書館C")
    d = approve(world.city, world.city_admin, world.jlis, type="D", area="extended", name="施設D")
    x = approve(
        world.city,
        world.city_admin,
        world.jlis,
        type="custom",
        area="extended",
        name="独自X",
        input_format="yaml",
        input_file=MULTI_BLOCK,
    )
    return Setup(terminal, a, c, d, x)


class Agent:
    """Runs a terminal's scripts against a card; counts round trips (scripts run)."""

    def __init__(
        self, terminal: Terminal, card: VirtualCard, transmit: Callable[[bytes], bytes] | None = None
    ) -> None:
        self.terminal = terminal
        self.card = card
        self.transmit = transmit or card.transmit  # a PC/SC reader's transmit in tests/pcsc
        self.trips = 0

    def run_script(self, body: bytes) -> bytes:
        out: list[bytes] = []
        for command in parse_command_script(body):
            try:
                response = self.transmit(command.encode())
            except CardUnresponsive:
                break  # the card went silent: the agent posts what it has
            out.append(response)
            if not agent_continues(int.from_bytes(response[-2:], "big")):
                break
        return encode_response_script(out)

    def run(self, job: Job, *, max_trips: int = 20) -> Job:
        """Serve the job's conversations until the job ends (or its card goes silent)."""
        while True:
            job.refresh_from_db()
            if not job.is_active or job.conversation is None:
                return job
            conv_id = str(job.conversation_id)
            step = engine.next_script(conv_id)
            while isinstance(step, engine.Script):
                self.trips += 1
                assert self.trips <= max_trips
                step = engine.submit_responses(
                    conversation_id=conv_id,
                    terminal_id=self.terminal.pk,
                    seq=step.seq,
                    body=self.run_script(step.body),
                )
