"""The operator's card job screens: every view for the allowed role, a forbidden role and another
provider's operator; the load flow from the browser's side (PIN twice, consent, progress JSON)."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from loading import services
from loading.models import Job
from operators.models import AuditEntry
from tests.conftest import signed_in
from tests.loading.jobs_support import Agent, setup
from vcard import VirtualCard


@pytest.fixture
def s(world, open_hours):
    return setup(world)


def _read(world, s, card):
    agent = Agent(s.terminal, card)
    job = services.start_read(operator=world.city_operator, terminal=s.terminal, request_key="r1")
    return agent, agent.run(job)


@pytest.mark.django_db
def test_terminal_page_by_role(world, s):
    url = reverse("jobs:terminal", args=[s.terminal.pk])
    assert signed_in(world.city_operator).get(url).status_code == 200
    assert signed_in(world.shop_operator).get(url).status_code == 404  # another provider's terminal
    assert signed_in(world.auditor).get(url).status_code == 404  # auditors do not operate cards
    assert signed_in(world.jlis).get(url).status_code == 404
    assert AuditEntry.objects.filter(action="permission.denied").count() == 3


@pytest.mark.django_db
def test_terminal_page_shows_the_agents_live_state(world, s):
    from loading.models import TerminalPresence

    url = reverse("jobs:terminal", args=[s.terminal.pk])
    page = signed_in(world.city_operator).get(url).content.decode()
    assert "接続履歴なし" in page and "presence.json" in page  # never polled; the page refreshes it
    TerminalPresence.objects.update_or_create(
        terminal=s.terminal,
        defaults={"last_poll_at": timezone.now(), "reader": "Virtual PCD 00 00", "card_present": True},
    )
    page = signed_in(world.city_operator).get(url).content.decode()
    assert "Virtual PCD 00 00" in page and "カードあり" in page


@pytest.mark.django_db
def test_read_then_load_from_the_browser(world, s):
    card = VirtualCard.create()
    client = signed_in(world.city_operator)
    response = client.post(reverse("jobs:read", args=[s.terminal.pk]), {"request_key": "k1"})
    job = Job.objects.get(kind="read")
    assert response.status_code == 302 and response["Location"] == reverse("jobs:job", args=[job.pk])
    status = client.get(reverse("jobs:job-status", args=[job.pk])).json()
    assert status["active"] is True and status["state"] == "reading"
    agent = Agent(s.terminal, card)
    agent.run(job)
    page = client.get(reverse("jobs:terminal", args=[s.terminal.pk])).content.decode()
    assert "<meter" in page and "<script>" not in page
    url = reverse("jobs:load", args=[s.terminal.pk])
    confirm = client.get(url, {"ap": [s.a.pk, s.c.pk]})
    assert confirm.status_code == 200 and "pin2_" in confirm.content.decode()
    data = {
        "ap": [s.a.pk, s.c.pk],
        f"pin_{s.a.pk}": "1357",
        f"pin2_{s.a.pk}": "1358",
        "consent": "on",
        "resident": "on",
        "request_key": "k2",
    }
    mismatch = client.post(url, data)
    assert mismatch.status_code == 200 and "1357" not in mismatch.content.decode()
    assert not Job.objects.filter(kind="load").exists()
    data[f"pin2_{s.a.pk}"] = "1357"
    response = client.post(url, data)
    load = Job.objects.get(kind="load")
    assert response.status_code == 302
    assert (
        client.post(url, data).status_code == 302 and Job.objects.filter(kind="load").count() == 1
    )  # double POST
    agent.run(load)
    result = client.get(reverse("jobs:job", args=[load.pk])).content.decode()
    load.refresh_from_db()
    assert load.state == "succeeded"
    for item in load.result["items"]:
        assert item["user_number"] and item["user_number"] in result
    assert "1357" not in result and "1357" not in str(
        list(AuditEntry.objects.values_list("detail", flat=True))
    )


@pytest.mark.django_db
def test_job_views_by_role(world, s):
    _agent, job = _read(world, s, VirtualCard.create())
    page = reverse("jobs:job", args=[job.pk])
    status = reverse("jobs:job-status", args=[job.pk])
    for user, code in [
        (world.city_operator, 200),
        (world.city_admin, 200),
        (world.jlis, 200),
        (world.auditor, 200),
        (world.shop_operator, 404),
        (world.shop_admin, 404),
    ]:
        client = signed_in(user)
        assert client.get(page).status_code == code, user
        assert client.get(status).status_code == code, user
    listing = signed_in(world.shop_admin).get(reverse("jobs:jobs")).content.decode()
    assert str(job.pk) not in listing
    assert str(job.pk) in signed_in(world.auditor).get(reverse("jobs:jobs")).content.decode()


@pytest.mark.django_db
def test_history_csv_by_role(world, s):
    _read(world, s, VirtualCard.create())
    url = reverse("jobs:jobs-csv")
    mine = signed_in(world.city_admin).get(url)
    assert mine.status_code == 200 and "窓口1" in mine.getvalue().decode("utf-8-sig")
    other = signed_in(world.shop_admin).get(url)
    assert "窓口1" not in other.getvalue().decode("utf-8-sig")
    assert "窓口1" in signed_in(world.jlis).get(url, {"encoding": "cp932"}).getvalue().decode("cp932")


@pytest.mark.django_db
def test_starting_jobs_refused_for_forbidden_roles(world, s):
    for user in (world.shop_operator, world.auditor, world.jlis):
        client = signed_in(user)
        assert (
            client.post(reverse("jobs:read", args=[s.terminal.pk]), {"request_key": "x"}).status_code == 404
        )
        assert client.get(reverse("jobs:load", args=[s.terminal.pk])).status_code == 404
        assert client.post(reverse("jobs:move-in", args=[s.terminal.pk])).status_code == 404
        assert client.post(reverse("jobs:delete", args=[s.terminal.pk])).status_code == 404
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_delete_and_move_in_screens(world, s):
    card = VirtualCard.create()
    agent, read = _read(world, s, card)
    load = services.start_load(
        operator=world.city_operator,
        terminal=s.terminal,
        read_job=read,
        items=[services.LoadItem(s.a, pin="1234"), services.LoadItem(s.c)],
        consent=True,
        resident_confirmed=True,
        request_key="l1",
    )
    agent.run(load)
    client = signed_in(world.city_operator)
    client.post(reverse("jobs:read", args=[s.terminal.pk]), {"request_key": "r2"})
    agent.run(Job.objects.filter(kind="read").order_by("-created_at").first())
    url = reverse("jobs:delete", args=[s.terminal.pk])
    assert s.c.name in client.get(url).content.decode()
    refused = client.post(url, {"ap": [s.c.pk], "request_key": "d1"})  # no consent
    assert refused.status_code == 200 and "同意" in refused.content.decode()
    done = client.post(url, {"ap": [s.c.pk], "consent": "on", "request_key": "d2"})
    assert done.status_code == 302
    agent.run(Job.objects.get(kind="delete"))
    assert card.info()["instances"] == {s.a.aid: "0F"}
    client.post(reverse("jobs:read", args=[s.terminal.pk]), {"request_key": "r3"})
    agent.run(Job.objects.filter(kind="read").order_by("-created_at").first())
    url = reverse("jobs:move-in", args=[s.terminal.pk])
    assert client.get(url).status_code == 200
    assert client.post(url, {"consent": "on", "resident": "on", "request_key": "m1"}).status_code == 302
    agent.run(Job.objects.get(kind="move_in"))
    assert card.info()["instances"] == {}


@pytest.mark.django_db
def test_a_failed_job_goes_to_fault_diagnosis_from_its_step_log(world, s):
    from loading.models import Diagnosis

    card = VirtualCard.create()
    agent, read = _read(world, s, card)
    card.faults.tear_at = 14  # in the change script, after the channel is open
    job = agent.run(
        services.start_load(
            operator=world.city_operator,
            terminal=s.terminal,
            read_job=read,
            items=[services.LoadItem(s.c)],
            consent=True,
            request_key="f1",
        )
    )
    assert job.state == "failed" and job.error_code == "card-lost"
    assert job.steps[-1]["sw"] == "" and {"step", "command", "sw", "target"} <= set(job.steps[-1])
    url = reverse("jobs:job-diagnose", args=[job.pk])
    assert signed_in(world.shop_operator).post(url).status_code == 404
    assert signed_in(world.auditor).post(url).status_code == 404
    response = signed_in(world.city_operator).post(url)
    diag = Diagnosis.objects.get(job_reference=str(job.pk))
    assert response.status_code == 302 and diag.reference in response["Location"]
    assert diag.job_log == job.steps


@pytest.mark.django_db
def test_job_screens_in_english(world, s, settings):
    import re

    _agent, read = _read(world, s, VirtualCard.create())
    client = signed_in(world.city_operator)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    pages = [
        reverse("jobs:terminal", args=[s.terminal.pk]),
        reverse("jobs:job", args=[read.pk]),
        reverse("jobs:jobs"),
        reverse("jobs:load", args=[s.terminal.pk]),
        reverse("jobs:move-in", args=[s.terminal.pk]),
    ]
    # data (names typed in Japanese) and the language switcher's own "日本語" stay
    names = {
        s.terminal.name,
        s.terminal.location,
        s.a.name,
        s.c.name,
        s.d.name,
        s.x.name,
        world.city.name,
        "日本語",
    }
    for url in pages:
        html = client.get(url).content.decode()
        text = re.sub(r"<[^>]+>", " ", html)
        for name in names:
            text = text.replace(name, "")
        leftover = re.findall(r"[\u3000-\u30ff\u4e00-\u9fff\uff00-\uffef]+", text)
        assert leftover == [], (url, leftover[:10])
