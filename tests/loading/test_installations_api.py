"""GET /api/v1/installations/: a provider's business system pulls the loads and deletions of its
card APs by a strictly increasing cursor; never the CIN, never another provider's entries; ETag,
API key and rate limit as the revocation feed."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from cardap.apikeys import issue_key
from loading import services
from tests.loading.jobs_support import Agent, setup
from vcard import VirtualCard

URL = "/api/v1/installations/"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def client_for(provider):
    _, token = issue_key(provider=provider, name="業務システム")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def loaded(world, open_hours):
    s = setup(world)
    card = VirtualCard.create()
    agent = Agent(s.terminal, card)
    n = iter(range(100))

    def read():
        return agent.run(
            services.start_read(operator=world.city_operator, terminal=s.terminal, request_key=f"r{next(n)}")
        )

    job = agent.run(
        services.start_load(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=read(),
            items=[services.LoadItem(s.c), services.LoadItem(s.d)],
            consent=True,
            request_key="l",
        )
    )
    assert job.state == "succeeded"
    agent.run(
        services.start_delete(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=read(),
            card_aps=[s.c],
            consent=True,
            request_key="d",
        )
    )
    return s, card


@pytest.mark.django_db
def test_loads_and_deletions_in_cursor_order(world, loaded):
    s, card = loaded
    client = client_for(world.city)
    page = client.get(URL).json()
    entries = page["entries"]
    assert [(e["aid"], e["state"]) for e in entries] == [
        (s.c.aid, "installed"),
        (s.d.aid, "installed"),
        (s.c.aid, "deleted"),
    ]
    seqs = [e["seq"] for e in entries]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3
    cin = card.info()["cin"]
    assert cin not in str(page) and cin.lower() not in str(page)
    assert len({e["card_ref"] for e in entries}) == 1  # stable per provider
    assert client.get(URL, {"after": seqs[0], "limit": 1}).json()["entries"][0]["seq"] == seqs[1]
    assert client.get(URL, {"after": seqs[-1]}).json() == {
        "entries": [],
        "cursor": seqs[-1],
        "next": None,
        "has_more": False,
    }


@pytest.mark.django_db
def test_another_provider_sees_nothing_and_etag(world, loaded):
    other = client_for(world.shop)
    assert other.get(URL).json()["entries"] == []
    client = client_for(world.city)
    first = client.get(URL)
    assert client.get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304


@pytest.mark.django_db
def test_auth_bad_parameters_and_rate_limit(world, loaded, settings, login):
    assert APIClient().get(URL).status_code == 401
    assert login(world.city_admin).get(URL).status_code == 401  # an operator's session is not an API key
    client = client_for(world.city)
    bad = client.get(URL, {"after": "x"})
    assert bad.status_code == 400 and "after" in bad.json()
    settings.REVOCATION_API_RATE = "2/min"
    cache.clear()
    assert [client.get(URL).status_code for _ in range(3)] == [200, 200, 429]


@pytest.mark.django_db
def test_in_the_openapi_schema(client):
    schema = client.get("/api/schema/").content.decode()
    assert "/api/v1/installations/" in schema and "installations_list" in schema


def test_a_304_is_one_statement_with_the_key(world, loaded):
    """The feed's high-water mark (the provider's last event) is read in the API key's own
    statement: a 304 runs that one, and a new event changes the ETag."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from loading.models import InstallationEvent

    client = client_for(world.city)
    first = client.get(URL)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert len(queries.captured_queries) == 1, queries.captured_queries
    last = InstallationEvent.objects.filter(provider=world.city).order_by("-id").first()
    assert last is not None
    last.pk = None
    last.save()
    assert client.get(URL, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200
