"""Fault diagnosis through the engine against the virtual card: every fault class produced for
real, with its Japanese advice on the result page, and the card unchanged by the diagnosis."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from cardap.models import FailureIncident
from gpcard.diagnosis import FaultClass
from loading import diagnosis as services
from loading.advice import ADVICE, Action
from loading.models import Diagnosis
from tests.conftest import signed_in
from tests.loading.diagnosis_support import (
    CASES,
    PRESENT,
    always_open,
    card_content,
    drive,
    grant_diagnosis,
    make_terminal,
    prepare,
    seed_master_keys,
)
from vcard import VirtualCard
from vcard.card import CardConfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(world, settings):
    always_open(settings)
    seed_master_keys()
    grant_diagnosis(world.city_operator)
    return world, make_terminal(world)


@pytest.mark.parametrize(("case", "faults", "expected", "failed_step"), CASES, ids=[c[0] for c in CASES])
def test_each_card_fault_is_classified_with_advice_and_the_card_unchanged(
    setup, case, faults, expected, failed_step
):
    world, terminal = setup
    card = VirtualCard.create(CardConfig(faults=faults))
    prepare(world, card, case)
    before = card_content(card)

    diag = services.start_diagnosis(operator=world.city_operator, terminal=terminal, presence=PRESENT)
    diag = drive(diag, card)

    assert diag.state == Diagnosis.State.DONE
    assert diag.fault_class == expected.value
    steps = {s["step"]: s for s in diag.result["steps"]}
    failed = [s for s in diag.result["steps"] if s["status"] == "failed"]
    if expected == FaultClass.NO_FAULT:
        assert failed == []
    else:
        [only] = failed
        if failed_step:
            assert only["step"] == failed_step
        # every step after the failed one is reported as not reached
        names = [s["step"] for s in diag.result["steps"]]
        after = names[names.index(only["step"]) + 1 :]
        assert all(steps[n]["status"] == "not_reached" for n in after)
    if case == "pin-blocked":
        assert failed[0]["step"].startswith("ap:") and failed[0]["sw"] == "6983"
    # the diagnosis changed nothing on the card and never addressed a standard AP
    if case != "tear":  # a torn card is off until reset; its memory is compared all the same
        assert card.standard_ap_commands == 0
    assert card_content(card) == before

    page = signed_in(world.city_operator).get(f"/diagnosis/{diag.reference}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert diag.reference in html
    assert str(ADVICE[expected].title) in html  # Japanese by default
    for label in ADVICE[expected].action_labels:
        assert str(label) in html


def test_the_failed_step_explains_its_status_word_in_words(setup):
    world, terminal = setup
    card = VirtualCard.create(CardConfig(faults=["sd-locked=local"]))
    diag = drive(services.start_diagnosis(operator=world.city_operator, terminal=terminal), card)
    html = signed_in(world.city_operator).get(f"/diagnosis/{diag.reference}/").content.decode()
    assert "6283（選択したカード・SD・AP がロック中）" in html
    assert 'class="step step-failed"' in html and 'class="step step-not_reached"' in html
    assert "<script" not in html.split("</header>")[1] and "style=" not in html.split("</header>")[1]
    english = signed_in(world.city_operator)
    english.cookies["django_language"] = "en"
    html_en = english.get(f"/diagnosis/{diag.reference}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "6283 (selected card, security domain or application is locked)" in html_en


@pytest.mark.parametrize(
    ("presence", "expected"),
    [
        ({"reader": False}, FaultClass.NO_READER),
        ({"reader": True, "card": False}, FaultClass.NO_CARD),
        (
            {"reader": True, "card": True, "atr": "3B8F8001804F0CA000000306030001000000006A"},
            FaultClass.NOT_MY_NUMBER_CARD,
        ),
    ],
)
def test_the_agents_report_alone_concludes_without_a_conversation(setup, presence, expected):
    world, terminal = setup
    diag = services.start_diagnosis(operator=world.city_operator, terminal=terminal, presence=presence)
    assert diag.conversation is None and diag.state == Diagnosis.State.DONE
    assert diag.fault_class == expected.value
    html = signed_in(world.city_operator).get(f"/diagnosis/{diag.reference}/").content.decode()
    assert str(ADVICE[expected].title) in html


def test_keys_missing_from_the_key_store_are_keys_rejected(world, settings):
    always_open(settings)
    grant_diagnosis(world.city_operator)
    terminal = make_terminal(world)
    card = VirtualCard.create()
    diag = drive(services.start_diagnosis(operator=world.city_operator, terminal=terminal), card)
    assert diag.fault_class == FaultClass.KEYS_REJECTED.value
    assert [s["finding"] for s in diag.result["steps"] if s["status"] == "failed"] == ["keys-unknown"]


def test_server_rules_refusing_an_operation_are_classified(setup, settings):
    world, terminal = setup
    # the operator has no load scope: the real check refuses
    from operators.policy import check_scope

    with pytest.raises(PermissionDenied) as refused:
        check_scope(world.city_operator, operation="load", terminal=terminal)
    diag = services.diagnose_job_log(
        operator=world.city_operator,
        terminal=terminal,
        job_reference="load 1",
        job_log=[],
        error_code=services.refusal_code(refused.value),
    )
    assert diag.fault_class == FaultClass.SERVER_REFUSED.value
    # outside service hours the real calendar refuses
    from cardap.service_calendar import ServiceClosed, check_can_start_job

    settings.SERVICE_OPEN_TIME, settings.SERVICE_CLOSE_TIME = "00:00", "00:01"
    with pytest.raises(ServiceClosed) as closed:
        check_can_start_job()
    assert services.refusal_code(closed.value) == "service-closed"
    diag = services.diagnose_job_log(
        operator=world.city_operator,
        terminal=terminal,
        job_reference="load 2",
        job_log=[],
        error_code=services.refusal_code(closed.value),
    )
    assert diag.fault_class == FaultClass.SERVER_REFUSED.value
    page = signed_in(world.city_operator).get(f"/diagnosis/{diag.reference}/").content.decode()
    assert str(ADVICE[FaultClass.SERVER_REFUSED].title) in page


def test_diagnosis_needs_its_scope_and_other_providers_see_nothing(setup):
    world, terminal = setup
    with pytest.raises(PermissionDenied):
        services.start_diagnosis(operator=world.city_admin, terminal=terminal)  # no 障害診断 scope
    assert Diagnosis.objects.count() == 0
    diag = services.start_diagnosis(
        operator=world.city_operator, terminal=terminal, presence={"reader": False}
    )
    assert signed_in(world.shop_operator).get(f"/diagnosis/{diag.reference}/").status_code == 404
    page = signed_in(world.city_admin).post("/diagnosis/", {"terminal": terminal.pk})
    assert page.status_code == 400 and "障害診断" in page.content.decode()


def test_reference_numbers_look_right_and_jlis_finds_them_in_the_admin(setup):
    world, terminal = setup
    diag = services.start_diagnosis(
        operator=world.city_operator, terminal=terminal, presence={"reader": False}
    )
    import re

    assert re.fullmatch(r"DG-\d{8}-[2-9A-HJ-KMNP-Z]{4}", diag.reference)
    admin = signed_in(world.jlis)
    listing = admin.get("/admin/loading/diagnosis/", {"q": diag.reference})
    assert listing.status_code == 200 and diag.reference in listing.content.decode()
    detail = admin.get(f"/admin/loading/diagnosis/{diag.pk}/change/")
    assert detail.status_code == 200 and "no-reader" in detail.content.decode()


def test_keys_rejected_on_several_cards_of_one_batch_is_reported_once(
    setup, mailoutbox, django_capture_on_commit_callbacks
):
    world, terminal = setup
    for n in range(4):
        card = VirtualCard.create(
            CardConfig(cin=bytes.fromhex("4A50AABB") + bytes([n]) * 6, faults=["wrong-keys"])
        )
        with django_capture_on_commit_callbacks(execute=True):
            diag = drive(services.start_diagnosis(operator=world.city_operator, terminal=terminal), card)
        assert diag.fault_class == FaultClass.KEYS_REJECTED.value
        assert bool(diag.incident_key) == (n >= 2)
    [incident] = FailureIncident.objects.filter(provider=world.city)
    assert incident.incident_key.startswith("keys-rejected-batch:4A50AABB:") and incident.occurrences == 2
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["fail@city.example.jp"]
    assert "4A50AABB" in mailoutbox[0].subject


def test_failing_probes_alone_make_no_terminal_incident(
    setup, mailoutbox, django_capture_on_commit_callbacks
):
    """The terminal rule counts the terminal's failed jobs (tests/loading/test_incidents.py):
    probes that found a fault are no job of that terminal failing."""
    world, terminal = setup
    for _n in range(3):
        card = VirtualCard.create()
        card.faults.mute_after = 3  # tells its CIN, then goes silent
        with django_capture_on_commit_callbacks(execute=True):
            diag = drive(services.start_diagnosis(operator=world.city_operator, terminal=terminal), card)
        assert diag.fault_class == FaultClass.COMMUNICATION_LOST.value
    assert diag.incident_key == "" and mailoutbox == []
    assert not FailureIncident.objects.exists()


def test_every_class_has_advice_with_a_next_step():
    assert set(ADVICE) == set(FaultClass)
    assert all(a.actions for a in ADVICE.values())
    assert Action.CONTACT_JLIS in ADVICE[FaultClass.CARD_LOCKED].actions
    assert Action.REISSUE in ADVICE[FaultClass.CARD_LOCKED].actions
