"""Card jobs end to end through the engine against the in-process virtual card: read, loads of
each type, delete, move-in, the rules refused before anything reaches the card, and the round
trips each job takes."""

from __future__ import annotations

import itertools

import pytest

from cardap.models import CardAPInstallation
from loading import services
from loading.models import Job, JobItem
from operators.models import AuditEntry
from tests.loading.jobs_support import Agent, setup
from vcard import VirtualCard

keys = (f"k{i}" for i in itertools.count())


@pytest.fixture
def s(world, open_hours):
    return setup(world)


def read(world, s, agent):
    job = services.start_read(operator=world.city_operator, terminal=s.terminal, request_key=next(keys))
    return agent.run(job)


def load(world, s, agent, items, **kw):
    first = read(world, s, agent)
    trips = agent.trips
    job = services.start_load(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        items=items,
        consent=True,
        request_key=next(keys),
        **kw,
    )
    job = agent.run(job)
    return job, agent.trips - trips


@pytest.mark.django_db
def test_read_of_a_new_card(world, s):
    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    job = read(world, s, agent)
    assert job.state == Job.State.SUCCEEDED, job.error_message
    assert job.card_id == card.info()["cin"]
    assert agent.trips <= 2
    assert (
        job.result["content"]["areas"]["local"]["free"]
        == card.info()["security_domains"]["D392100031000201"]["free"]
    )
    assert [s["command"] for s in job.steps][:3] == ["SELECT", "GET DATA", "GET DATA"]
    assert AuditEntry.objects.filter(action="job.started").count() == 1
    assert AuditEntry.objects.filter(action="job.succeeded").count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("which", ["a", "c", "d", "x"])
def test_load_of_each_type_then_delete(world, s, which):
    ap = getattr(s, which)
    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    job, trips = load(world, s, agent, [services.LoadItem(ap, pin="4321")], resident_confirmed=True)
    assert job.state == Job.State.SUCCEEDED, (job.error_code, job.error_message, job.steps)
    assert trips <= (3 if ap.is_custom else 3)  # its own read (<= 2) + one change script
    assert card.info()["instances"] == {ap.aid: "0F"}
    row = CardAPInstallation.objects.get(card_ap=ap)
    assert row.state == CardAPInstallation.State.PERSONALISED and row.card_id == card.info()["cin"]
    assert job.result["items"][0]["user_number"] == row.user_number
    assert "4321" not in str(job.steps) + str(job.request) + str(job.result)
    assert not job.sealed_secrets and not job.conversation.sealed_secrets
    before = agent.trips
    first = read(world, s, agent)
    dj = services.start_delete(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        card_aps=[ap],
        consent=True,
        request_key=next(keys),
    )
    dj = agent.run(dj)
    assert dj.state == Job.State.SUCCEEDED, (dj.error_code, dj.steps)
    assert agent.trips - before - 2 <= 3
    assert card.info()["instances"] == {} and card.info()["load_files"] == []
    row.refresh_from_db()
    assert row.state == CardAPInstallation.State.DELETED


@pytest.mark.django_db
def test_move_in_deletes_the_local_area_only(world, s):
    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    job, _ = load(
        world, s, agent, [services.LoadItem(s.a, pin="1234"), services.LoadItem(s.c)], resident_confirmed=True
    )
    assert job.state == Job.State.SUCCEEDED
    first = read(world, s, agent)
    mj = services.start_move_in(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        consent=True,
        resident_confirmed=True,
        request_key=next(keys),
    )
    mj = agent.run(mj)
    assert mj.state == Job.State.SUCCEEDED, mj.steps
    assert card.info()["instances"] == {s.c.aid: "0F"}
    assert CardAPInstallation.objects.get(card_ap=s.a).state == CardAPInstallation.State.DELETED


@pytest.mark.django_db
def test_capacity_is_refused_before_anything_reaches_the_card(world, s):
    from vcard.card import CardConfig

    card = VirtualCard.create(CardConfig(quotas={bytes.fromhex("D392100031000202"): 200}))
    agent = Agent(s.terminal, card)
    first = read(world, s, agent)
    with pytest.raises(services.JobRefused) as refused:
        services.start_load(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=first,
            items=[services.LoadItem(s.x)],
            consent=True,
            request_key=next(keys),
        )
    assert refused.value.code == "capacity" and refused.value.hint
    assert AuditEntry.objects.filter(action="job.refused").count() == 1
    assert card.info()["instances"] == {}


@pytest.mark.django_db
def test_a_double_submission_makes_one_job(world, s):
    agent = Agent(s.terminal, VirtualCard.create())
    first = read(world, s, agent)
    kw = dict(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        items=[services.LoadItem(s.c)],
        consent=True,
        request_key="same",
    )
    one = services.start_load(**kw)
    two = services.start_load(**kw)
    assert one.pk == two.pk and Job.objects.filter(kind="load").count() == 1
    assert JobItem.objects.filter(job=one).count() == 1
