"""Card jobs over the real reader path: the engine's scripts run through pyscard → pcscd → vpcd
to the virtual card (a stand-in for cardap-agent does what the agent does with them)."""

from __future__ import annotations

import pytest

from loading import services
from loading.models import Job
from tests.loading.jobs_support import Agent, open_all_day, setup

pytestmark = [pytest.mark.pcsc, pytest.mark.django_db]


@pytest.mark.parametrize("make_terminal", ["pcsc"], indirect=True)
def test_read_load_and_delete_through_pcsc(world, settings, make_terminal):
    open_all_day(settings)
    s = setup(world)
    reader = make_terminal()
    agent = Agent(s.terminal, reader.card, reader.transmit)

    def read() -> Job:
        return agent.run(
            services.start_read(
                operator=world.city_operator, terminal=s.terminal, request_key=f"p{agent.trips}"
            )
        )

    first = read()
    assert first.state == "succeeded" and first.card_id == reader.card.info()["cin"]
    job = agent.run(
        services.start_load(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=first,
            items=[
                services.LoadItem(s.a, pin="2580"),
                services.LoadItem(s.c),
                services.LoadItem(s.x, pin="1470"),
            ],
            consent=True,
            resident_confirmed=True,
            request_key="pl",
        )
    )
    assert job.state == "succeeded", (job.error_code, job.steps[-3:])
    assert reader.card.info()["instances"] == {s.a.aid: "0F", s.c.aid: "0F", s.x.aid: "0F"}
    job = agent.run(
        services.start_delete(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=read(),
            card_aps=[s.x],
            consent=True,
            request_key="pd",
        )
    )
    assert job.state == "succeeded"
    assert reader.card.info()["instances"] == {s.a.aid: "0F", s.c.aid: "0F"}
    assert reader.card.info()["load_files"] == []
