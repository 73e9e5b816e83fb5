"""Tearing: the card loses power after each command of a job in turn (vcard fault ``tear=N``).
After the card is reset and read again (the read reconciles and repairs), the database and the
card agree every time. Each test asserts that it covered every cut point of its job."""

from __future__ import annotations

import itertools

import pytest

from cardap.models import CardAP, CardAPInstallation
from loading import services
from loading.models import Job, JobItem
from tests.loading.jobs_support import Agent, setup
from vcard import VirtualCard

keys = (f"t{i}" for i in itertools.count())
PERSONALISED = "0F"


@pytest.fixture
def s(world, open_hours):
    return setup(world)


def read(world, s, agent) -> Job:
    job = services.start_read(operator=world.city_operator, terminal=s.terminal, request_key=next(keys))
    return agent.run(job)


def assert_agree(card: VirtualCard) -> None:
    """The card's own content against the installation records: nothing half-done on either side."""
    info = card.info()
    cin = info["cin"]
    on_card = info["instances"]
    assert all(lc == PERSONALISED for lc in on_card.values()), on_card
    rows = CardAPInstallation.objects.filter(card_id=cin).exclude(state="deleted")
    assert {r.card_ap.aid: r.state for r in rows} == {aid: "personalised" for aid in on_card}
    custom = {ap.load_file_aid for ap in CardAP.objects.filter(aid__in=list(on_card), type="custom")}
    assert set(info["load_files"]) == custom


def load_job(world, s, agent, aps) -> Job:
    first = read(world, s, agent)
    if first.state != Job.State.SUCCEEDED:
        return first  # the cut fell in the read the operator looks at
    job = services.start_load(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        items=[services.LoadItem(ap, pin="2468") for ap in aps],
        consent=True,
        resident_confirmed=True,
        request_key=next(keys),
    )
    return agent.run(job)


def delete_job(world, s, agent, aps) -> Job:
    first = read(world, s, agent)
    if first.state != Job.State.SUCCEEDED:
        return first  # the cut fell in the read the operator looks at
    job = services.start_delete(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        card_aps=aps,
        consent=True,
        request_key=next(keys),
    )
    return agent.run(job)


def move_in_job(world, s, agent, _aps) -> Job:
    first = read(world, s, agent)
    if first.state != Job.State.SUCCEEDED:
        return first  # the cut fell in the read the operator looks at
    job = services.start_move_in(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        consent=True,
        resident_confirmed=True,
        request_key=next(keys),
    )
    return agent.run(job)


def cut_everywhere(world, s, *, prepare, job, aps) -> int:
    """Run ``job`` once per cut point (power lost at its 1st, 2nd, … command) on a fresh card
    prepared by ``prepare``; reconcile; check agreement. Returns the number of cut points."""
    cut = 0
    while True:
        cut += 1
        card = VirtualCard.create()
        agent = Agent(s.terminal, card)
        if prepare is not None:
            assert load_job(world, s, agent, prepare).state == Job.State.SUCCEEDED
        first_command = card.commands
        card.faults.tear_at = cut
        result = job(world, s, agent, aps)
        if card.faults.tear_at is not None:  # the job ended before the cut: every point covered
            assert result.state == Job.State.SUCCEEDED
            assert_agree(card)
            return cut - 1
        assert card.commands - first_command == cut - 1  # the torn command never reached the card
        assert result.state == Job.State.FAILED and result.error_code == "card-lost", (cut, result.error_code)
        card.reset()
        again = read(world, s, agent)
        assert again.state == Job.State.SUCCEEDED, (cut, again.error_code, again.error_message)
        assert_agree(card)


@pytest.mark.django_db
def test_tearing_a_standard_load(world, s):
    points = cut_everywhere(world, s, prepare=None, job=load_job, aps=[s.a, s.d])
    print(f"standard load: {points} cut points")
    assert points >= 20
    # the cuts between INSTALL and the last STORE DATA left unpersonalised APs that reads deleted
    assert JobItem.objects.filter(job__kind="read", action="repair", outcome="done").count() >= 4


@pytest.mark.django_db
def test_tearing_a_custom_load(world, s):
    points = cut_everywhere(world, s, prepare=None, job=load_job, aps=[s.x])
    print(f"custom load: {points} cut points")
    assert points >= 20
    assert JobItem.objects.filter(job__kind="read", action="repair", outcome="done").exists()


@pytest.mark.django_db
def test_tearing_a_delete(world, s):
    points = cut_everywhere(world, s, prepare=[s.c, s.x], job=delete_job, aps=[s.c, s.x])
    print(f"delete: {points} cut points")
    assert points >= 20


@pytest.mark.django_db
def test_tearing_a_move_in(world, s):
    points = cut_everywhere(world, s, prepare=[s.a, s.c], job=move_in_job, aps=[])
    print(f"move-in: {points} cut points")
    assert points >= 20
