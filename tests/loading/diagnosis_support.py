"""Shared by the diagnosis tests: the world's diagnosing operator, a card with the demo keys in
the key store, an agent that runs scripts against a virtual card (stopping where a real one
does), and the card's state compared before/after."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.utils import timezone

from cardap.keystore import get_keystore
from cardap.models import CardAP, CardAPInstallation
from gpcard.aid import Area, instance_aid
from gpcard.conversation import agent_continues
from gpcard.diagnosis import FaultClass
from gpcard.script import encode_response_script, parse_command_script
from loading import engine
from loading.engine import Ended
from loading.models import Diagnosis
from operators.models import Operation, OperatorScope, Terminal
from tests import factories
from tests.pcsc import host
from vcard import CardUnresponsive, VirtualCard
from vcard.bureau import DEMO_MASTER_KEYS
from vcard.state import ISD_AID

MY_NUMBER_ATR = "3BE000FF8131FE4514"
PRESENT = {"reader": True, "card": True, "atr": MY_NUMBER_ATR}


def always_open(settings: Any) -> None:
    """Service hours around the clock, the closed period far from today."""
    far = (timezone.now() + dt.timedelta(days=180)).date()
    settings.SERVICE_OPEN_TIME, settings.SERVICE_CLOSE_TIME = "00:00", "23:59:59"
    settings.SERVICE_CLOSED_PERIOD = f"{far:%m-%d}..{far:%m-%d}"


def seed_master_keys() -> None:
    store = get_keystore()
    for sd, key in DEMO_MASTER_KEYS.items():
        store.put_master_key(sd, 0x30, key)


def make_terminal(world: Any, name: str = "窓口1") -> Terminal:
    return Terminal.objects.create(
        provider=world.city, name=name, location="本庁舎1階", administrator=world.city_admin
    )


def grant_diagnosis(operator: Any) -> None:
    OperatorScope.objects.create(operator=operator, operation=Operation.DIAGNOSE, all_terminals=True)


def card_ap(world: Any, serial: int, *, area: str = "local", ap_type: str = "A") -> CardAP:
    aid = instance_aid(Area.LOCAL if area == "local" else Area.EXTENDED, serial).hex()
    return factories.card_ap(world.city, f"テストAP{serial}", type=ap_type, area=area, aid=aid, serial=serial)


def install(card: VirtualCard, serial: int, *, personalise: bool = True, kind: str = "A") -> bytes:
    """Put a card AP on the card directly (as an earlier load did)."""
    desc = host.description(kind)
    inst = bytes(instance_aid(Area.LOCAL, serial))
    commands = host.install_commands(desc, inst)
    if personalise:
        commands += host.personalise_commands(inst, host.content_dgis(desc))
    host.open_sd(card.transmit).run(commands)
    return inst


def record_installed(ap: CardAP, card: VirtualCard) -> None:
    CardAPInstallation.objects.create(
        card_id=card.state.cin.hex().upper(),
        card_ap=ap,
        user_number="12345678",
        state=CardAPInstallation.State.PERSONALISED,
    )


def card_content(card: VirtualCard) -> str:
    """Everything the card keeps, less the SCP03 sequence counters (every secure channel opening
    advances them, by the protocol)."""
    state = card.state.to_dict()
    for item in (*state["sds"], *state["instances"]):
        item.pop("sequence_counter")
    return json.dumps(state, sort_keys=True)


def agent_run(body: bytes, card: VirtualCard) -> bytes:
    """What the terminal agent does with a script: run it in order, stop after the first
    unexpected status word, and report fewer responses when the card stops answering."""
    responses: list[bytes] = []
    for command in parse_command_script(body):
        try:
            response = card.transmit(command.encode())
        except CardUnresponsive:
            break
        responses.append(response)
        if not agent_continues(int.from_bytes(response[-2:], "big")):
            break
    return encode_response_script(responses)


def drive(diag: Diagnosis, card: VirtualCard, *, max_trips: int = 20) -> Diagnosis:
    """Run the diagnosis conversation through the engine, as the relay does, to its end."""
    if diag.conversation_id is not None:
        conv_id, terminal_id = str(diag.conversation_id), diag.terminal_id
        step = engine.next_script(conv_id)
        for _trip in range(max_trips):
            if isinstance(step, Ended):
                break
            step = engine.submit_responses(
                conversation_id=conv_id,
                terminal_id=terminal_id,
                seq=step.seq,
                body=agent_run(step.body, card),
            )
        assert isinstance(step, Ended)
    diag.refresh_from_db()
    return diag


def prepare(world, card: VirtualCard, case: str) -> None:
    """The card-side situation of each case (done before the diagnosis, as earlier operations did)."""
    ap = card_ap(world, 7)
    if case in ("no-fault", "pin-blocked"):
        install(card, 7)
        record_installed(ap, card)
    elif case == "half-installed":
        install(card, 7, personalise=False)
        record_installed(ap, card)
    elif case == "missing":
        record_installed(ap, card)
    elif case == "unknown":
        install(card, 7)  # on the card, but the registry has no record of it on this card
    elif case == "not-my-number-card":
        del card.state.sds[ISD_AID]  # a card without the J-LIS card manager
    elif case == "tear":
        card.faults.tear_at = 5  # power lost during the fifth command of the diagnosis
    elif case == "mute":
        card.faults.mute_after = 2


CASES = [  # shared with tests/relay/test_diagnosis_relay.py
    # case, card faults, expected class, failed step
    ("no-fault", [], FaultClass.NO_FAULT, None),
    ("not-my-number-card", [], FaultClass.NOT_MY_NUMBER_CARD, "card_manager"),
    ("card-locked", ["card-locked"], FaultClass.CARD_LOCKED, "life_cycle"),
    ("sd-locked-local", ["sd-locked=local"], FaultClass.AREA_LOCKED, "area_sd:local"),
    ("sd-locked-extended", ["sd-locked=extended"], FaultClass.AREA_LOCKED, "area_sd:extended"),
    ("wrong-keys", ["wrong-keys"], FaultClass.KEYS_REJECTED, "scp03:local"),
    ("memory-full", ["memory-full"], FaultClass.AREA_FULL, "memory:local"),
    ("half-installed", [], FaultClass.AP_HALF_INSTALLED, "content"),
    ("missing", [], FaultClass.AP_MISSING, "content"),
    ("unknown", [], FaultClass.AP_MISSING, "content"),
    ("pin-blocked", ["pin-blocked"], FaultClass.PIN_BLOCKED, None),  # the card AP's own step
    ("tear", [], FaultClass.COMMUNICATION_LOST, "area_sd:extended"),  # its SELECT is the 5th
    ("mute", [], FaultClass.COMMUNICATION_LOST, "card_manager"),  # silent from GET DATA CIN on
]
