"""The framework-free diagnosis: classifying a failed job's own step log, the plan's refusal to
address anything but card AP instances, and the probe run in-process against the virtual card."""

from __future__ import annotations

import pytest

from gpcard.aid import JPKI_AP_AID, Area, instance_aid
from gpcard.conversation import Batch
from gpcard.diagnosis import FaultClass, Presence, ProbePlan, classify, classify_job_log, probe
from gpcard.diversify import diversify_keys
from gpcard.script import parse_response_script
from tests.loading.diagnosis_support import agent_run
from vcard import VirtualCard
from vcard.bureau import DEMO_MASTER_KEYS
from vcard.card import CardConfig


def _log(*steps: tuple[str, str, str]) -> list[dict[str, str]]:
    return [{"label": label, "command": command, "sw": sw} for label, command, sw in steps]


@pytest.mark.parametrize(
    ("log", "code", "expected"),
    [
        (
            _log(("load", "SELECT", "9000"), ("load", "INSTALL [for install]", "6A84")),
            "",
            FaultClass.AREA_FULL,
        ),
        (
            _log(("open", "INITIALIZE UPDATE", "9000"), ("open", "EXTERNAL AUTHENTICATE", "6982")),
            "",
            FaultClass.KEYS_REJECTED,
        ),
        (
            [{"label": "card manager", "command": "SELECT", "sw": "6283", "target": "isd"}],
            "",
            FaultClass.CARD_LOCKED,
        ),
        ([{"label": "area", "command": "SELECT", "sw": "6283", "target": "sd"}], "", FaultClass.AREA_LOCKED),
        (_log(("personalise", "STORE DATA", "6985")), "", FaultClass.AP_HALF_INSTALLED),
        (_log(("delete", "DELETE", "6A88")), "", FaultClass.AP_MISSING),
        (_log(("read", "VERIFY", "6983")), "", FaultClass.PIN_BLOCKED),
        (_log(("load", "SELECT", "9000"), ("load", "LOAD", "")), "card-lost", FaultClass.COMMUNICATION_LOST),
        ([], "refused-scope", FaultClass.SERVER_REFUSED),
        ([], "consent-missing", FaultClass.SERVER_REFUSED),
        (
            [{"label": "card manager", "command": "SELECT", "sw": "6A82", "target": "isd"}],
            "",
            FaultClass.NOT_MY_NUMBER_CARD,
        ),
        (_log(("x", "GET DATA", "6F00")), "", FaultClass.UNCLASSIFIED),
    ],
)
def test_a_failed_job_is_classified_from_its_own_log(log, code, expected):
    assert classify_job_log(log, code) is expected


def test_the_plan_refuses_standard_aps():
    with pytest.raises(ValueError):
        ProbePlan(expected=(JPKI_AP_AID,))


def _keys(sd, iin, cin):
    return diversify_keys(DEMO_MASTER_KEYS[bytes(sd)], iin, cin)


def _run(conversation, card):
    try:
        batch = next(conversation)
        while True:
            body = agent_run(Batch(batch.commands).script(), card)
            batch = conversation.send([r.encode() for r in parse_response_script(body).responses])
    except StopIteration as stop:
        return stop.value


def test_the_probe_runs_in_process_and_round_trips_its_plan():
    card = VirtualCard.create(CardConfig(faults=["memory-full"]))
    plan = ProbePlan(presence=Presence(True, True, VirtualCard.ATR), expected=(instance_aid(Area.LOCAL, 9),))
    assert ProbePlan.from_params(plan.to_params()) == plan
    result = _run(probe(plan, keys=_keys, host_challenge=lambda n: bytes([n]) * 8), card)
    assert classify(result) is FaultClass.AREA_FULL
    assert result["facts"]["cin"] == card.state.cin.hex().upper()
    assert card.standard_ap_commands == 0
