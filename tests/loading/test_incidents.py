"""Incidents from the evidence that exists, on real Job rows the engine produced against the
virtual card: a terminal whose jobs all fail (its failed Job rows in the window), keys rejected on
several cards of one batch (failed jobs whose own log says so); each reported once. And a failed
load or delete classified from its own step log, with no new probe and the card unchanged."""

from __future__ import annotations

import pytest

from cardap.models import FailureIncident
from gpcard.diagnosis import FaultClass
from loading import services
from loading.advice import ADVICE
from loading.models import CardConversation, Diagnosis, Job
from tests.conftest import signed_in
from tests.loading.diagnosis_support import card_content
from tests.loading.jobs_support import Agent, open_all_day, setup
from vcard import VirtualCard
from vcard.card import CardConfig
from vcard.state import EXTENDED_SD_AID

pytestmark = pytest.mark.django_db
BATCH = bytes.fromhex("4A50C0DE")


@pytest.fixture
def s(world, settings):
    open_all_day(settings)
    return setup(world)


def read(world, terminal, card: VirtualCard, key: str) -> Job:
    job = services.start_read(operator=world.city_operator, terminal=terminal, request_key=key)
    return Agent(terminal, card).run(job)


def failing_card(n: int, fault: str = "mute=4", batch: bytes | None = None) -> VirtualCard:
    cin = (batch or bytes([0x4A, 0x50, n, n])) + bytes([n]) * 6
    return VirtualCard.create(CardConfig(cin=cin, faults=[fault]))


def test_a_terminal_whose_jobs_all_fail_is_reported_once(
    world, s, mailoutbox, django_capture_on_commit_callbacks
):
    for n in range(4):
        with django_capture_on_commit_callbacks(execute=True):
            job = read(world, s.terminal, failing_card(n), f"r{n}")
        assert job.state == Job.State.FAILED and job.error_code == "card-lost"
        assert job.card_id == failing_card(n).state.cin.hex().upper()  # the CIN it told first
        assert FailureIncident.objects.exists() == (n >= 2)
    [incident] = FailureIncident.objects.all()
    assert incident.incident_key.startswith(f"terminal-failures:{s.terminal.pk}:")
    assert incident.occurrences == 2  # the third failure opened it, the fourth added to it
    assert len(mailoutbox) == 1 and mailoutbox[0].to == ["fail@city.example.jp"]
    assert s.terminal.name in mailoutbox[0].subject
    assert not Diagnosis.objects.exists()  # computed from the jobs, not from any diagnosis


def test_a_success_between_or_one_card_failing_again_is_no_incident(
    world, s, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        read(world, s.terminal, failing_card(1), "a")
        read(world, s.terminal, failing_card(2), "b")
        assert read(world, s.terminal, VirtualCard.create(), "ok").state == Job.State.SUCCEEDED
        read(world, s.terminal, failing_card(3), "c")
        assert not FailureIncident.objects.exists()
        other = type(s.terminal).objects.create(
            provider=world.city, name="窓口2", location="支所", administrator=world.city_admin
        )
        same = failing_card(9)
        for n in range(3):
            same.faults.mute_after = 4
            same.power_on()
            assert read(world, other, same, f"same{n}").state == Job.State.FAILED
    # three jobs failed at the other terminal, but all on one card: that card's fault
    assert not FailureIncident.objects.exists() and mailoutbox == []


def test_refusals_break_no_run_and_make_none(world, s, mailoutbox, django_capture_on_commit_callbacks):
    card = VirtualCard.create()
    first = read(world, s.terminal, card, "full")  # succeeded: the run starts after it
    card.faults.memory_full = True  # the change's own read will find the area full
    with django_capture_on_commit_callbacks(execute=True):
        for n in range(2):
            read(world, s.terminal, failing_card(n), f"f{n}")
        refused = Agent(s.terminal, card).run(
            services.start_load(
                operator=world.city_operator,
                terminal=s.terminal,
                read_job=first,
                items=[services.LoadItem(s.c)],
                consent=True,
                request_key="full-load",
            )
        )
        assert refused.state == Job.State.REFUSED and refused.error_code == "capacity"
        assert not FailureIncident.objects.exists()
        read(world, s.terminal, failing_card(5), "f5")
    # failed, failed, (refused: the server's rule), failed: three failures in a row
    [incident] = FailureIncident.objects.all()
    assert incident.incident_key.startswith("terminal-failures:")
    assert len(mailoutbox) == 1


def test_keys_rejected_on_cards_of_one_batch_from_failed_jobs(
    world, s, mailoutbox, django_capture_on_commit_callbacks
):
    other = type(s.terminal).objects.create(
        provider=world.city, name="窓口2", location="支所", administrator=world.city_admin
    )
    for n in range(4):
        terminal = (s.terminal, other)[n % 2]  # no terminal fails three times: the batch rule alone
        with django_capture_on_commit_callbacks(execute=True):
            job = read(world, terminal, failing_card(n, "wrong-keys", BATCH), f"k{n}")
        assert job.state == Job.State.FAILED and job.error_code == "wrong-keys"
        assert FailureIncident.objects.exists() == (n >= 2)
    [incident] = FailureIncident.objects.all()
    assert incident.incident_key.startswith("keys-rejected-batch:4A50C0DE:")
    assert incident.occurrences == 2
    assert len(mailoutbox) == 1 and "4A50C0DE" in mailoutbox[0].subject
    # other cards of other batches with keys rejected do not add to it
    third = type(s.terminal).objects.create(
        provider=world.city, name="窓口3", location="支所", administrator=world.city_admin
    )
    with django_capture_on_commit_callbacks(execute=True):
        read(world, third, failing_card(7, "wrong-keys"), "k-other")
    assert FailureIncident.objects.get().occurrences == 2


def _load(world, s, card: VirtualCard, first: Job, key: str) -> Job:
    return services.start_load(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        items=[services.LoadItem(s.c), services.LoadItem(s.d)],
        consent=True,
        request_key=key,
    )


def _lock_extended(card: VirtualCard) -> None:
    card.state.sds[EXTENDED_SD_AID].life_cycle |= 0x80


def _wrong_keys(card: VirtualCard) -> None:
    card.faults.wrong_keys = True


def _tear_mid_change(card: VirtualCard) -> None:
    card.faults.tear_at = 6  # the re-opening of the channel goes, then power is lost mid-install


def _full(card: VirtualCard) -> None:
    card.faults.memory_full = True


LOAD_CASES = [
    ("tear", _tear_mid_change, Job.State.FAILED, FaultClass.COMMUNICATION_LOST),
    ("sd-locked", _lock_extended, Job.State.FAILED, FaultClass.AREA_LOCKED),
    ("wrong-keys", _wrong_keys, Job.State.FAILED, FaultClass.KEYS_REJECTED),
    ("memory-full", _full, Job.State.REFUSED, FaultClass.AREA_FULL),
]


@pytest.mark.parametrize(("case", "fault", "state", "expected"), LOAD_CASES, ids=[c[0] for c in LOAD_CASES])
def test_a_failed_load_is_classified_from_its_own_log(world, s, case, fault, state, expected):
    card = VirtualCard.create()
    first = read(world, s.terminal, card, "first")
    fault(card)  # after the read: what the card does when the change comes
    job = Agent(s.terminal, card).run(_load(world, s, card, first, "load"))
    assert job.state == state, (job.error_code, job.steps[-3:])
    card.faults.tear_at = None
    card.power_on()
    before, conversations = card_content(card), CardConversation.objects.count()

    page = signed_in(world.city_operator).post(f"/jobs/{job.pk}/diagnose")
    diag = Diagnosis.objects.get()
    assert page.status_code == 302 and page["Location"].endswith(f"/diagnosis/{diag.reference}/")
    assert diag.source == Diagnosis.Source.JOB and diag.fault_class == expected.value
    assert diag.job_reference == str(job.pk) and diag.job_log == job.steps
    # no new probe: no conversation, nothing sent to the card
    assert CardConversation.objects.count() == conversations and diag.conversation is None
    assert card_content(card) == before
    html = signed_in(world.city_operator).get(f"/diagnosis/{diag.reference}/").content.decode()
    assert str(ADVICE[expected].title) in html and diag.reference in html


def test_a_failed_delete_is_classified_from_its_own_log(world, s):
    card = VirtualCard.create()
    first = read(world, s.terminal, card, "first")
    loaded = Agent(s.terminal, card).run(_load(world, s, card, first, "load"))
    assert loaded.state == Job.State.SUCCEEDED
    second = read(world, s.terminal, card, "second")
    card.faults.tear_at = 5  # power lost inside the delete's change
    job = Agent(s.terminal, card).run(
        services.start_delete(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=second,
            card_aps=[s.d],
            consent=True,
            request_key="delete",
        )
    )
    assert job.kind == Job.Kind.DELETE and job.state == Job.State.FAILED, job.error_code
    card.faults.tear_at = None
    card.power_on()
    before, conversations = card_content(card), CardConversation.objects.count()
    signed_in(world.city_operator).post(f"/jobs/{job.pk}/diagnose")
    diag = Diagnosis.objects.get()
    assert diag.fault_class == FaultClass.COMMUNICATION_LOST.value
    assert CardConversation.objects.count() == conversations and card_content(card) == before


def test_server_refusals_from_the_real_rules_are_classified(world, s, settings):
    """Scope, hours, maintenance, consent and an area rule, each refused by loading.rules itself."""
    from cardap.models import MaintenanceWindow

    card = VirtualCard.create()
    first = read(world, s.terminal, card, "first")
    codes = {}

    def refused(**overrides) -> str:
        kwargs = {
            "operator": world.city_operator,
            "terminal": s.terminal,
            "read_job": first,
            "items": [services.LoadItem(s.c)],
            "consent": True,
            "request_key": f"x{len(codes)}",
        } | overrides
        with pytest.raises(services.JobRefused) as exc:
            services.start_load(**kwargs)
        return exc.value.code

    codes["consent"] = refused(consent=False)
    codes["area rule"] = refused(items=[services.LoadItem(s.a, pin="2580")])  # local area, not confirmed
    codes["scope"] = refused(operator=world.city_admin)
    settings.SERVICE_OPEN_TIME, settings.SERVICE_CLOSE_TIME = "00:00", "00:01"
    codes["hours"] = refused()
    open_all_day(settings)
    import datetime as dt

    from django.utils import timezone

    now = timezone.now()
    MaintenanceWindow.objects.create(
        title="保守", starts_at=now - dt.timedelta(minutes=5), ends_at=now + dt.timedelta(hours=1)
    )
    codes["maintenance"] = refused()
    assert codes == {
        "consent": "consent_missing",
        "area rule": "resident_not_confirmed",
        "scope": "scope",
        "hours": "service_closed",
        "maintenance": "maintenance",
    }
    for what, code in codes.items():
        diag = services_diagnose(world, s, code)
        assert diag.fault_class == FaultClass.SERVER_REFUSED.value, what


def services_diagnose(world, s, code: str) -> Diagnosis:
    from loading import diagnosis

    return diagnosis.diagnose_job_log(
        operator=world.city_operator, terminal=s.terminal, job_reference=code, job_log=[], error_code=code
    )
