"""Card jobs end to end in headless Chromium, every part real: a uvicorn ASGI server process and a
Celery worker process (with beat: supervision) on PostgreSQL and Redis, the real cardap-agent
reaching the virtual card through pcscd + vpcd. An operator signs in with password and one-time
code, watches the agent's state, reads the card, loads a type A (holder PIN twice), C, D and a
custom AP, deletes one and runs the move-in processing; after each step the virtual card's own
state and the Job rows are checked. Run under ``flock /tmp/cardap-pcsc.lock``.

One browser page, one server, one worker, one agent for the whole scenario; the skip (or the
failure under CARDAP_REQUIRE_REAL_SERVICES=1) comes first when PostgreSQL and Redis are not
configured."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from playwright.sync_api import Page, expect

from loading import engine
from loading.models import CardConversation, Job
from operators.models import Terminal
from operators.services import issue_terminal_credential
from tests.e2e.signin import password_for_server_process, sign_in
from tests.loading.jobs_support import setup
from tests.otp_helpers import fresh_cache  # noqa: F401
from tests.pcsc.readers import PcscCard, insert_card, pcscd_service, unavailable
from tests.relay.conftest import agent_command  # noqa: F401 - the real agent, pip-installed
from tests.relay.live import ROOT, Agent, LiveServer, wait_until
from vcard import VirtualCard

pytestmark = [pytest.mark.e2e, pytest.mark.pcsc, pytest.mark.celery, pytest.mark.django_db(transaction=True)]

SUPERVISE_SECONDS = 2


def _require_real_services() -> None:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        unavailable("the browser card-jobs test needs PostgreSQL and Redis (DATABASE_URL, REDIS_URL)")


class Server(LiveServer):
    def env(self) -> dict[str, str]:
        # Card operations at any hour (demo mode), so the scenario runs whenever CI does.
        return {**super().env(), "DEMO_OPEN_ALL_HOURS": "1"}


class Worker:
    """``celery -A config worker -B``: a worker process with its beat (supervision every 2 s)."""

    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        self.log_path = tmp / "worker.log"
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "-B", "-P", "solo",
                "--loglevel", "INFO", "-s", str(tmp / "beat-schedule"), "--without-gossip",
                "--without-mingle", "-n", f"e2e-{os.getpid()}@%h",
            ],
            cwd=ROOT, env={**env, "RELAY_SUPERVISE_SECONDS": str(SUPERVISE_SECONDS)},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        wait_until(lambda: "ready." in self.log() or self.proc.poll() is not None, 60, "the worker")
        assert self.proc.poll() is None, self.log()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, 15)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait(5)


@pytest.fixture
def stack(world, agent_command, tmp_path) -> Iterator[tuple[Server, Worker, PcscCard, Agent, object]]:  # noqa: F811
    _require_real_services()
    s = setup(world)
    password_for_server_process(world.city_operator)
    credential = issue_terminal_credential(actor=world.city_admin, terminal=s.terminal)
    credential_file = tmp_path / "credential"
    credential_file.write_text(credential + "\n")
    credential_file.chmod(0o600)
    with contextlib.ExitStack() as stack:
        stack.enter_context(pcscd_service())
        server = Server(tmp_path / "server.log")
        server.start()
        stack.callback(server.stop)
        worker = Worker(server.env(), tmp_path)
        stack.callback(worker.stop)
        pc = insert_card(VirtualCard.create())
        with contextlib.suppress(Exception):
            pc.connection.disconnect()  # type: ignore[attr-defined]  # the agent owns the card now
        stack.callback(pc.close)
        agent = Agent(agent_command, server.url, credential_file, pc.reader, tmp_path / "agent.log").start()
        stack.callback(agent.stop)
        yield server, worker, pc, agent, s





def finish(page: Page, kind: str) -> Job:
    """On a job's page: the live progress polls the job's status until it ends and the page shows
    the result; returns the job row."""
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}/$"))
    job_id = page.url.rstrip("/").rsplit("/", 1)[1]
    expect(page.locator("#job")).to_have_attribute("data-active", "0", timeout=30_000)
    expect(page.locator("#job-state")).to_have_text("完了")
    job = Job.objects.get(pk=job_id)
    assert job.kind == kind and job.state == Job.State.SUCCEEDED, (job.error_code, job.error_message)
    assert page.locator("#job-steps li").count() == len(job.steps) > 0
    return job


def instances(pc: PcscCard) -> dict[str, str]:
    return dict(pc.card.info()["instances"])


def area_free(pc: PcscCard, sd: str) -> int:
    return int(pc.card.info()["security_domains"][sd]["free"])


def read(page: Page, base: str, terminal: Terminal) -> Job:
    page.goto(f"{base}/jobs/terminals/{terminal.pk}/")
    page.get_by_role("button", name="カード読取").click()
    return finish(page, Job.Kind.READ)


def load(page: Page, base: str, terminal: Terminal, ap, pins: int, status_polls: list[str]) -> Job:
    read(page, base, terminal)
    page.goto(f"{base}/jobs/terminals/{terminal.pk}/load")
    page.get_by_label(re.compile(re.escape(ap.name))).check()
    page.get_by_role("button", name="次へ（確認）").click()
    expect(page.locator("h1")).to_have_text("搭載の確認")
    expect(page.locator("meter")).not_to_have_count(0)  # the capacity after the load
    password_fields = page.locator("input[type=password]")
    assert password_fields.count() == pins
    for i in range(pins):
        password_fields.nth(i).fill("4321")  # the holder types the PIN, then once more
    for name in ("resident", "consent"):
        box = page.locator(f"input[name={name}]")
        if box.count():
            box.check()
    polls_before = len(status_polls)
    page.get_by_role("button", name="搭載する").click()
    job = finish(page, Job.Kind.LOAD)
    assert len(status_polls) > polls_before  # the page followed the job live
    expect(page.locator("table.grid").first).to_contain_text(ap.name)
    return job


def test_card_jobs_in_the_browser(stack, page: Page, world):
    server, worker, pc, agent, s = stack
    base = server.url
    terminal = s.terminal
    status_polls: list[str] = []
    page.on("request", lambda r: status_polls.append(r.url) if r.url.endswith("/status.json") else None)

    sign_in(page, base, world.city_operator)
    agent.wait_log("connected to", 30)

    # The terminal page shows the agent's live state from its presence.
    page.goto(f"{base}/jobs/terminals/{terminal.pk}/")
    presence = page.locator(".presence")
    expect(presence.locator("[data-field=card_label]")).to_have_text("カードあり", timeout=20_000)
    expect(presence.locator("[data-field=reader]")).to_have_text(pc.reader)
    expect(presence.locator("[data-field=agent_version]")).to_contain_text("cardap-agent/")

    # Read: the capacity bars and the (empty) AP list, as on the card.
    job = read(page, base, terminal)
    assert job.card_id == pc.card.info()["cin"]
    local_free = area_free(pc, "D392100031000201")
    expect(page.locator(".card-view meter")).to_have_count(2)
    expect(page.locator(".card-view")).to_contain_text(f"空き {local_free} バイト")
    expect(page.locator(".card-view")).to_contain_text("このサービス提供者のカードAPは搭載されていません。")
    assert instances(pc) == {}

    # Loads: type A (holder PIN twice), C, D (system PIN: none asked), custom.
    loaded = {}
    for ap, pins in ((s.a, 2), (s.c, 0), (s.d, 0), (s.x, 2 if s.x.pin_source == "holder" else 0)):
        job = load(page, base, terminal, ap, pins, status_polls)
        assert [i.card_ap_id for i in job.items.all()] == [ap.pk]
        loaded[ap.aid] = "0F"
        assert instances(pc) == loaded, ap.name
        assert job.items.get().outcome == "done"
    assert area_free(pc, "D392100031000201") < local_free

    # The terminal page after a read lists the four APs as loaded.
    read(page, base, terminal)
    page.goto(f"{base}/jobs/terminals/{terminal.pk}/")
    for ap in (s.a, s.c, s.d, s.x):
        expect(page.locator(".card-view tr", has_text=ap.name)).to_contain_text("搭載済")

    # Delete the type C AP.
    page.goto(f"{base}/jobs/terminals/{terminal.pk}/delete")
    page.get_by_label(re.compile(re.escape(s.c.name))).check()
    page.locator("input[name=consent]").check()
    page.get_by_role("button", name="削除する").click()
    job = finish(page, Job.Kind.DELETE)
    del loaded[s.c.aid]
    assert instances(pc) == loaded

    # Move-in: every local-resident area AP goes (type A); the extended-use ones stay.
    read(page, base, terminal)
    page.goto(f"{base}/jobs/terminals/{terminal.pk}/move-in")
    page.locator("input[name=resident]").check()
    page.locator("input[name=consent]").check()
    page.get_by_role("button", name="転入処理を行う").click()
    finish(page, Job.Kind.MOVE_IN)
    del loaded[s.a.aid]
    assert instances(pc) == loaded == {s.d.aid: "0F", s.x.aid: "0F"}

    # The history lists every job of the scenario, all completed.
    kinds = list(Job.objects.filter(terminal=terminal).order_by("created_at").values_list("kind", "state"))
    assert [k for k, _ in kinds].count(Job.Kind.LOAD) == 4 and {st for _, st in kinds} == {"succeeded"}
    page.goto(f"{base}/jobs/?terminal={terminal.pk}")
    expect(page.locator("table.grid tbody tr")).to_have_count(len(kinds))

    # The worker's supervision (beat, every 2 s) interrupts a conversation no agent picks up, and
    # it never interrupted the scenario's own.
    idle = Terminal.objects.create(
        provider=world.city, name="窓口2", location="2階", administrator=world.city_admin
    )
    conv = engine.start_conversation(terminal_id=idle.pk, program_name="card-read", params={})
    CardConversation.objects.filter(pk=conv.pk).update(
        created_at=timezone.now() - dt.timedelta(seconds=settings.RELAY_PICKUP_SECONDS + 5)
    )

    def interrupted() -> bool:
        conv.refresh_from_db()
        return conv.state == CardConversation.State.INTERRUPTED

    wait_until(interrupted, 30, "the worker's supervision")
    assert conv.error_code == "agent-offline"
    assert "loading.supervise_conversations" in worker.log()
    assert not CardConversation.objects.filter(terminal=terminal).exclude(state="finished").exists()
