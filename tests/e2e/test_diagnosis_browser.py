"""A torn load through the real stack (uvicorn, the real cardap-agent, pcscd + vpcd, the virtual
card losing power mid-change), then in headless Chromium: the operator opens the diagnosis from
the failed job and reads the class, the advice and the reference number; a J-LIS staff member
signs in to the admin and finds that diagnosis, its job and its step log by the reference number.
Run under ``flock /tmp/cardap-pcsc.lock``."""

from __future__ import annotations

import contextlib
import re

import pytest
from playwright.sync_api import Browser, Page, expect

from gpcard.diagnosis import FaultClass
from loading import services
from loading.advice import ADVICE
from loading.models import Diagnosis, Job
from operators.services import issue_terminal_credential
from tests.e2e.signin import password_for_server_process, sign_in
from tests.loading.jobs_support import open_all_day, setup
from tests.pcsc.readers import insert_card
from tests.relay import conftest as relay
from tests.relay.conftest import AgentTerminal, wait_presence
from tests.relay.live import POLL_SECONDS, wait_until
from vcard import VirtualCard

pytestmark = [pytest.mark.e2e, pytest.mark.pcsc]
# The relay's fixtures: its uvicorn server process, pcscd and the real cardap-agent.
_relay_server_process = relay._relay_server_process
relay_server = relay.relay_server
agent_command = relay.agent_command
pcscd = relay.pcscd
start_agent = relay.start_agent
TEAR_AT = 6  # counted from the start of the load: power is lost inside its change





def run_job(job: Job) -> Job:
    def ended() -> bool:
        job.refresh_from_db()
        return not job.is_active

    wait_until(ended, POLL_SECONDS + 40, f"job {job.pk} to end")
    return job


def test_torn_load_diagnosed_by_the_operator_and_found_by_jlis(
    page: Page, browser: Browser, world, settings, relay_server, start_agent, pcscd, tmp_path
):
    open_all_day(settings)
    s = setup(world)  # demo keys in the key store, the city's card APs, an operator allowed all
    credential = tmp_path / "credential"
    credential.write_text(issue_terminal_credential(actor=world.city_admin, terminal=s.terminal) + "\n")
    credential.chmod(0o600)
    at = AgentTerminal(s.terminal, "", credential)

    card = VirtualCard.create()
    pc = insert_card(card)
    with contextlib.suppress(Exception):
        pc.connection.disconnect()  # type: ignore[attr-defined]
    try:
        agent = start_agent(at, relay_server.url, pc.reader)
        wait_presence(s.terminal, card_present=True)
        read = run_job(
            services.start_read(operator=world.city_operator, terminal=s.terminal, request_key="r")
        )
        assert read.state == Job.State.SUCCEEDED, (read.error_code, agent.log()[-2000:])
        card.faults.tear_at = TEAR_AT
        job = run_job(
            services.start_load(
                operator=world.city_operator,
                terminal=s.terminal,
                read_job=read,
                items=[services.LoadItem(s.c), services.LoadItem(s.d)],
                consent=True,
                request_key="l",
            )
        )
        assert job.state == Job.State.FAILED and job.error_code == "card-lost", (job.error_code, job.steps)
        assert job.steps[-1]["sw"] == ""  # the command the card lost power in
    finally:
        pc.close()

    # The operator opens the failed job and asks for its diagnosis.
    base = relay_server.url
    password_for_server_process(world.city_operator)
    sign_in(page, base, world.city_operator)
    page.goto(f"{base}/jobs/{job.pk}/")
    expect(page.locator("#job-state")).to_have_text("失敗")
    page.get_by_role("button", name="この失敗を診断する（障害診断）").click()
    expect(page).to_have_url(re.compile(r"/diagnosis/DG-\d{8}-[0-9A-Z]{4}/$"))
    reference = page.locator("#reference").inner_text().strip()
    diag = Diagnosis.objects.get(reference=reference)
    assert diag.source == Diagnosis.Source.JOB and diag.job_reference == str(job.pk)
    assert diag.fault_class == FaultClass.COMMUNICATION_LOST.value and diag.conversation is None
    advice = ADVICE[FaultClass.COMMUNICATION_LOST]
    expect(page.locator("#fault")).to_have_attribute("data-class", "communication-lost")
    expect(page.locator("#fault h2")).to_have_text(str(advice.title))
    expect(page.locator("#fault")).to_contain_text(str(advice.meaning))
    for label in advice.action_labels:
        expect(page.locator("#advice .actions").first).to_contain_text(str(label))
    expect(page.locator("#advice").first).to_contain_text(f"受付番号 {reference}")
    expect(page.locator(".step-failed")).to_have_count(1)

    # J-LIS staff, told the reference number, find it in the admin.
    staff = browser.new_page(locale="ja-JP", timezone_id="Asia/Tokyo")
    try:
        password_for_server_process(world.jlis)
        sign_in(staff, base, world.jlis)
        staff.goto(f"{base}/admin/loading/diagnosis/")
        staff.fill("#searchbar", reference)
        staff.press("#searchbar", "Enter")
        expect(staff.locator("#result_list tbody tr")).to_have_count(1)
        staff.locator("#result_list").get_by_role("link", name=reference).click()
        expect(staff).to_have_url(re.compile(rf"/admin/loading/diagnosis/{diag.pk}/change/"))
        body = staff.locator("#content")
        expect(body).to_contain_text(reference)
        expect(body).to_contain_text("communication-lost")
        expect(body).to_contain_text(str(advice.title))
        expect(body).to_contain_text(str(job.pk))  # the job it is about
        expect(staff.locator(".diagnosis-job")).to_contain_text("搭載 · 失敗 · card-lost · 窓口1")
        log = staff.locator(".field-job_steps .readonly > div")  # the job's own step log, command by command
        expect(log).to_have_count(len(job.steps))
        for n, entry in enumerate(job.steps):
            expect(log.nth(n)).to_contain_text(f"{entry['step']} · {entry['command']}")
        expect(log.last).to_contain_text("· —")  # the command the card never answered
    finally:
        staff.close()
