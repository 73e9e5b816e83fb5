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
    assert trips == 2  # identity and counters, then one change script (custom: every LOAD block in it)
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
    assert agent.trips - before - 2 == 2
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


def _terminal(world, provider, admin, name="窓口2"):
    from operators.models import Terminal

    return Terminal.objects.create(provider=provider, name=name, location="別館", administrator=admin)


@pytest.mark.django_db
def test_an_interrupted_load_is_settled_by_the_next_read(world, s):
    from loading import engine

    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    first = read(world, s, agent)
    job = services.start_load(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        items=[services.LoadItem(s.c)],
        consent=True,
        request_key=next(keys),
    )
    # the agent runs the job's read, gets the change script, runs it, and goes silent before posting
    conv = job.conversation
    step = engine.next_script(str(conv.id))
    step = engine.submit_responses(
        conversation_id=str(conv.id), terminal_id=s.terminal.pk, seq=0, body=agent.run_script(step.body)
    )
    if isinstance(step, engine.Script):
        step = engine.submit_responses(
            conversation_id=str(conv.id),
            terminal_id=s.terminal.pk,
            seq=step.seq,
            body=agent.run_script(step.body),
        )
    job.refresh_from_db()
    assert job.state == Job.State.CHANGING
    change = engine.next_script(str(job.conversation_id))
    agent.run_script(change.body)  # the card is changed, the answer never arrives
    assert engine.interrupt(str(job.conversation_id), "agent-silent")
    job.refresh_from_db()
    assert job.state == Job.State.INTERRUPTED and job.error_code == "agent-silent" and job.error_message
    row = CardAPInstallation.objects.get(card_ap=s.c)
    assert row.state == CardAPInstallation.State.INSTALLING  # the intent, recorded before the script
    again = read(world, s, agent)
    assert again.state == Job.State.SUCCEEDED
    row.refresh_from_db()
    assert row.state == CardAPInstallation.State.PERSONALISED  # the card says it was completed
    assert AuditEntry.objects.filter(action="installation.reconciled").count() == 1


@pytest.mark.django_db
def test_two_terminals_presenting_the_same_card(world, s):
    """The second read of a card another terminal is working on is refused; nothing is lost."""
    from loading import engine

    card = VirtualCard.create()
    other = _terminal(world, world.city, world.city_admin)
    one, two = Agent(s.terminal, card), Agent(other, card)
    first = read(world, s, one)
    job = services.start_load(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        items=[services.LoadItem(s.c)],
        consent=True,
        request_key=next(keys),
    )
    conv = job.conversation
    step = engine.next_script(str(conv.id))
    step = engine.submit_responses(
        conversation_id=str(conv.id), terminal_id=s.terminal.pk, seq=0, body=one.run_script(step.body)
    )
    while isinstance(step, engine.Script):
        step = engine.submit_responses(
            conversation_id=str(conv.id),
            terminal_id=s.terminal.pk,
            seq=step.seq,
            body=one.run_script(step.body),
        )
    job.refresh_from_db()
    assert job.state == Job.State.CHANGING and job.card_id
    second = two.run(
        services.start_read(operator=world.city_operator, terminal=other, request_key=next(keys))
    )
    assert second.state == Job.State.REFUSED and second.error_code == "card_busy"
    # the second reader moved the card's session counters: the first job's change script is
    # caught at its INITIALIZE UPDATE, before any command that changes the card
    ended = one.run(job)
    assert ended.state == Job.State.FAILED and ended.error_code == "card-used-elsewhere"
    assert card.info()["instances"] == {}
    assert CardAPInstallation.objects.get(card_ap=s.c).state == CardAPInstallation.State.DELETED
    retry, _ = load(world, s, one, [services.LoadItem(s.c)])
    assert retry.state == Job.State.SUCCEEDED
    assert card.info()["instances"] == {s.c.aid: "0F"}


@pytest.mark.django_db
def test_rules_refuse_before_the_card_is_touched(world, s):
    from operators.models import OperatorScope

    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    first = read(world, s, agent)
    base = dict(operator=world.city_operator, terminal=s.terminal, read_job=first, consent=True)

    def refused(**kw):
        with pytest.raises(services.JobRefused) as exc:
            services.start_load(**{**base, "request_key": next(keys), **kw})
        assert exc.value.message and exc.value.hint
        return exc.value.code

    assert refused(items=[services.LoadItem(s.c)], consent=False) == "consent_missing"
    assert refused(items=[services.LoadItem(s.a, pin="1234")]) == "resident_not_confirmed"
    assert refused(items=[services.LoadItem(s.a, pin="12")], resident_confirmed=True) == "pin"
    assert refused(items=[services.LoadItem(s.c, user_number="123456789018")]) == "user_number"
    # another provider's AP: neither owner nor co-provider
    from tests.loading.jobs_support import approve

    shop_ap = approve(world.shop, world.shop_admin, world.jlis, type="C", area="extended", name="店C")
    assert refused(items=[services.LoadItem(shop_ap)]) in ("scope", "not_loadable")
    # another provider's operator at this terminal
    with pytest.raises(services.JobRefused) as exc:
        services.start_read(operator=world.shop_operator, terminal=s.terminal, request_key=next(keys))
    assert exc.value.code == "scope"
    # no scope for delete on this terminal
    OperatorScope.objects.filter(operator=world.city_operator, operation="delete").delete()
    with pytest.raises(services.JobRefused) as exc:
        services.start_delete(**{**base, "card_aps": [s.c], "request_key": next(keys)})
    assert exc.value.code == "scope"
    assert Job.objects.filter(kind__in=["load", "delete"]).count() == 0
    assert card.info()["instances"] == {}


@pytest.mark.django_db
def test_one_job_at_a_time_per_terminal(world, s):
    services.start_read(operator=world.city_operator, terminal=s.terminal, request_key=next(keys))
    with pytest.raises(services.JobRefused) as exc:
        services.start_read(operator=world.city_operator, terminal=s.terminal, request_key=next(keys))
    assert exc.value.code == "terminal_busy"


@pytest.mark.django_db
def test_local_area_holds_one_municipalitys_aps(world, s):
    from cardap.models import Provider
    from operators.models import Operation, OperatorScope
    from tests.conftest import make_operator

    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    assert (
        load(world, s, agent, [services.LoadItem(s.a, pin="1234")], resident_confirmed=True)[0].state
        == "succeeded"
    )
    town = Provider.objects.create(name="隣町", kind="municipality", local_gov_code="131024", status="live")
    town_admin = make_operator("town_admin", "provider_admin", town)
    town_op = make_operator("town_op", "operator", town)
    for op in Operation.values:
        OperatorScope.objects.create(operator=town_op, operation=op, all_terminals=True, all_card_aps=True)
    from tests.loading.jobs_support import approve

    town_ap = approve(town, town_admin, world.jlis, type="C", area="local", name="町C")
    t2 = _terminal(world, town, town_admin, "町窓口")
    agent2 = Agent(t2, card)
    first = agent2.run(services.start_read(operator=town_op, terminal=t2, request_key=next(keys)))
    with pytest.raises(services.JobRefused) as exc:
        services.start_load(
            operator=town_op,
            terminal=t2,
            read_job=first,
            items=[services.LoadItem(town_ap)],
            consent=True,
            resident_confirmed=True,
            request_key=next(keys),
        )
    assert exc.value.code == "local_area_other_municipality"
    # move-in by the new municipality empties the local area; then it loads
    mj = agent2.run(
        services.start_move_in(
            operator=town_op,
            terminal=t2,
            read_job=first,
            consent=True,
            resident_confirmed=True,
            request_key=next(keys),
        )
    )
    assert mj.state == "succeeded"
    first = agent2.run(services.start_read(operator=town_op, terminal=t2, request_key=next(keys)))
    lj = agent2.run(
        services.start_load(
            operator=town_op,
            terminal=t2,
            read_job=first,
            items=[services.LoadItem(town_ap)],
            consent=True,
            resident_confirmed=True,
            request_key=next(keys),
        )
    )
    assert lj.state == "succeeded" and card.info()["instances"] == {town_ap.aid: "0F"}


@pytest.mark.django_db
def test_round_trip_budgets(world, s):
    """Read <= 2; a standard load <= 2 more (the operator's read not counted); a custom AP with a
    multi-block load file <= 3; a delete <= 2; counted as scripts the agent ran."""
    from gpcard import apdesc

    _sd, signature, block = apdesc.parse_load_file(bytes(s.x.load_file))
    assert len(apdesc.load_blocks(apdesc.ISD_AID, block, signature)) > 1  # really multi-block
    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    counts = {}
    job, counts["standard load"] = load(
        world, s, agent, [services.LoadItem(s.a, pin="1234"), services.LoadItem(s.c)], resident_confirmed=True
    )
    job, counts["custom load"] = load(world, s, agent, [services.LoadItem(s.x, pin="9876")])
    before = agent.trips
    first = read(world, s, agent)
    counts["read"] = agent.trips - before
    before = agent.trips
    agent.run(
        services.start_delete(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=first,
            card_aps=[s.c, s.x],
            consent=True,
            request_key=next(keys),
        )
    )
    counts["delete"] = agent.trips - before
    print(counts)
    assert counts == {"standard load": 2, "custom load": 2, "read": 2, "delete": 2}
    assert card.info()["instances"] == {s.a.aid: "0F"}


@pytest.mark.django_db
@pytest.mark.parametrize("ran", [5, 6, 8])
def test_agent_killed_mid_script_then_interrupted_and_repaired(world, s, ran):
    """The agent dies after running part of the change script (no POST); supervision interrupts
    the job; the next read deletes the half-installed AP and the records follow the card."""
    from gpcard.script import parse_command_script
    from loading import engine

    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    first = read(world, s, agent)
    job = services.start_load(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=first,
        items=[services.LoadItem(s.a, pin="1234")],
        consent=True,
        resident_confirmed=True,
        request_key=next(keys),
    )
    conv = str(job.conversation_id)
    step = engine.next_script(conv)
    engine.submit_responses(
        conversation_id=conv, terminal_id=s.terminal.pk, seq=0, body=agent.run_script(step.body)
    )
    job.refresh_from_db()
    change = engine.next_script(str(job.conversation_id))
    for command in parse_command_script(change.body)[:ran]:  # SELECT, IU, EA, INSTALL, INSTALL [perso], …
        card.transmit(command.encode())
    assert engine.interrupt(str(job.conversation_id), "agent-silent")
    job.refresh_from_db()
    assert job.state == Job.State.INTERRUPTED
    assert job.items.get().outcome == JobItem.Outcome.UNKNOWN
    again = read(world, s, agent)
    assert again.state == Job.State.SUCCEEDED
    row = CardAPInstallation.objects.get(card_ap=s.a)
    on_card = card.info()["instances"]
    assert bool(on_card) == (ran >= 6)  # 6 commands: SELECT, IU, EA, INSTALL, INSTALL [perso], STORE DATA
    if on_card:
        assert on_card == {s.a.aid: "0F"} and row.state == CardAPInstallation.State.PERSONALISED
    else:
        assert row.state == CardAPInstallation.State.DELETED
    assert all(lc == "0F" for lc in on_card.values())
