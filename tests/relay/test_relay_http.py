"""The relay over real HTTP against a real ASGI server process (uvicorn) on the test database:
the test plays the agent with httpx and the virtual card in-process."""

from __future__ import annotations

import concurrent.futures
import secrets
import time

import httpx
import pytest
from django.conf import settings

from gpcard.conversation import Batch, run_batch
from gpcard.script import (
    CONTENT_TYPE_COMMAND_SCRIPT,
    CONTENT_TYPE_RESPONSE_SCRIPT,
    encode_response_script,
    parse_command_script,
)
from loading import engine
from loading.models import CardConversation, TerminalPresence
from operators.models import AuditEntry
from operators.services import issue_terminal_credential, revoke_terminal_credential
from tests.relay.conftest import make_terminal
from tests.relay.live import POLL_SECONDS
from vcard import VirtualCard

RT = CONTENT_TYPE_RESPONSE_SCRIPT


def session() -> str:
    return secrets.token_hex(16)


def poll(server, credential: str, sess: str, **state) -> httpx.Response:
    body = {
        "session": sess,
        "agent": "test-agent/1",
        "reader": "Test Reader",
        "card_present": True,
        "atr": "3BE000FF8131FE4514",
        **state,
    }
    return httpx.post(
        server.url + "/relay/v1/poll",
        json=body,
        timeout=POLL_SECONDS + 20,
        headers={"Authorization": f"Terminal {credential}"},
    )


def post(server, credential: str, sess: str, uri: str, body: bytes, content_type: str = RT) -> httpx.Response:
    return httpx.post(
        server.url + uri,
        content=body,
        timeout=20,
        headers={
            "Authorization": f"Terminal {credential}",
            "X-Cardap-Agent-Session": sess,
            "Content-Type": content_type,
        },
    )


def run_on(card: VirtualCard, script: bytes) -> bytes:
    commands = tuple(c.encode() for c in parse_command_script(script))
    return encode_response_script(run_batch(Batch(commands), card.transmit))


def first_script(server, at, sess) -> httpx.Response:
    engine.start_conversation(terminal_id=at.terminal.pk, program_name="identify", params={})
    got = poll(server, at.credential, sess)
    assert got.status_code == 200, got.text
    return got


@pytest.mark.django_db(transaction=True)
def test_poll_without_work_answers_204_after_the_wait_and_records_presence(relay_server, agent_terminal):
    started = time.monotonic()
    got = poll(relay_server, agent_terminal.credential, session())
    assert got.status_code == 204 and got.headers["X-Cardap-Relay"] == "1"
    assert time.monotonic() - started >= POLL_SECONDS - 0.5
    presence = TerminalPresence.objects.get(terminal=agent_terminal.terminal)
    assert presence.reader == "Test Reader" and presence.card_present and presence.atr == "3BE000FF8131FE4514"
    assert presence.agent_version == "test-agent/1" and presence.last_poll_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_whole_conversation_over_http_and_a_repeated_post(relay_server, agent_terminal):
    card = VirtualCard.create()
    sess = session()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, relay_server, agent_terminal.credential, sess)
        time.sleep(0.5)  # the poll is waiting when the work arrives
        started = time.monotonic()
        conv = engine.start_conversation(
            terminal_id=agent_terminal.terminal.pk, program_name="identify", params={}
        )
        got = waiting.result()
    if settings.REDIS_URL:  # woken through Redis pub/sub, not at the end of the wait
        assert time.monotonic() - started < POLL_SECONDS - 1
    else:  # no Redis: another process's work is found by the next poll
        assert got.status_code == 204
        got = poll(relay_server, agent_terminal.credential, sess)
    assert got.status_code == 200
    assert got.headers["Content-Type"] == CONTENT_TYPE_COMMAND_SCRIPT
    assert got.headers["X-Admin-Protocol"] == "globalplatform-remote-admin/1.0"
    assert got.headers["X-Cardap-Script-Id"] == f"{conv.id}/0" and got.headers["X-Cardap-Commands"] == "3"
    uri = got.headers["X-Admin-Next-URI"]
    assert uri == f"/relay/v1/conversations/{conv.id}/scripts/0"
    answer = run_on(card, got.content)
    done = post(relay_server, agent_terminal.credential, sess, uri, answer)
    assert done.status_code == 204 and done.headers["X-Cardap-Conversation-State"] == "finished"
    again = post(relay_server, agent_terminal.credential, sess, uri, answer)
    assert again.status_code == 204 and again.headers["X-Cardap-Conversation-State"] == "finished"
    conv.refresh_from_db()
    assert conv.state == "finished" and conv.round_trips == 1 and set(conv.outcome) == {"iin", "cin"}


def _too_many() -> bytes:
    return encode_response_script([bytes.fromhex("9000")] * 4)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("case", "seq", "body", "content_type", "status", "code"),
    [
        ("not a script", 0, b"hello", RT, 400, "malformed"),
        ("wrong tags", 0, bytes.fromhex("AA03220100"), RT, 400, "malformed"),
        ("R-APDU tag wrong", 0, bytes.fromhex("AB0680010124019000"), RT, 400, "malformed"),
        ("more responses than commands", 0, None, RT, 400, "too-many"),
        (
            "a script id never sent",
            7,
            encode_response_script([bytes.fromhex("9000")]),
            RT,
            409,
            "wrong-script",
        ),
        ("oversized", 0, b"\xab" + b"\x00" * (engine.MAX_RESPONSE_SCRIPT + 10), RT, 413, "too-large"),
        (
            "wrong content type",
            0,
            encode_response_script([bytes.fromhex("9000")]),
            "text/plain",
            415,
            "content-type",
        ),
    ],
)
def test_bad_input_is_refused_precisely_audited_and_ends_nothing(
    relay_server, agent_terminal, case, seq, body, content_type, status, code
):
    sess = session()
    got = first_script(relay_server, agent_terminal, sess)
    conv_id = got.headers["X-Cardap-Script-Id"].split("/")[0]
    audited = AuditEntry.objects.filter(action="relay.refused").count()
    uri = f"/relay/v1/conversations/{conv_id}/scripts/{seq}"
    refused = post(
        relay_server,
        agent_terminal.credential,
        sess,
        uri,
        _too_many() if body is None else body,
        content_type,
    )
    assert refused.status_code == status, refused.text
    assert refused.json()["code"] == code and refused.json()["message"]
    entry = AuditEntry.objects.filter(action="relay.refused").order_by("-id").first()
    assert AuditEntry.objects.filter(action="relay.refused").count() == audited + 1
    assert entry.detail["code"] == code and entry.target == agent_terminal.terminal.name
    conv = CardConversation.objects.get(pk=conv_id)
    assert conv.state == "running" and conv.round_trips == 0
    # The conversation goes on: the right answer still completes it.
    done = post(
        relay_server,
        agent_terminal.credential,
        sess,
        f"/relay/v1/conversations/{conv_id}/scripts/0",
        run_on(VirtualCard.create(), got.content),
    )
    assert done.status_code == 204 and done.headers["X-Cardap-Conversation-State"] == "finished"


@pytest.mark.django_db(transaction=True)
def test_malformed_poll_bodies(relay_server, agent_terminal):
    headers = {"Authorization": f"Terminal {agent_terminal.credential}"}
    url = relay_server.url + "/relay/v1/poll"
    for content, ctype, status, code in [
        (b"{not json", "application/json", 400, "malformed"),
        (b'{"session": "short"}', "application/json", 400, "malformed"),
        (b'{"session": "%s", "atr": "zz"}' % session().encode(), "application/json", 400, "malformed"),
        (b"x" * 5000, "application/json", 413, "too-large"),
        (b"{}", "text/plain", 415, "content-type"),
    ]:
        got = httpx.post(url, content=content, headers={**headers, "Content-Type": ctype}, timeout=10)
        assert (got.status_code, got.json()["code"]) == (status, code), content
    assert not TerminalPresence.objects.filter(terminal=agent_terminal.terminal).exists()


@pytest.mark.django_db(transaction=True)
def test_unknown_credential_is_refused_and_audited(relay_server):
    got = httpx.post(
        relay_server.url + "/relay/v1/poll",
        json={"session": session()},
        timeout=10,
        headers={"Authorization": "Terminal cat_deadbeef_notavalidsecret"},
    )
    assert got.status_code == 401 and got.json()["code"] == "unauthorized"
    assert got.headers["WWW-Authenticate"] == "Terminal"
    entry = AuditEntry.objects.filter(action="relay.auth_failed").get()
    assert entry.detail["credential_id"] == "deadbeef" and "notavalidsecret" not in str(entry.detail)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("how", ["revoke", "rotate"])
def test_revoked_or_rotated_credential_ends_an_open_poll_at_once(relay_server, agent_terminal, world, how):
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, relay_server, agent_terminal.credential, session())
        time.sleep(1.0)
        started = time.monotonic()
        if how == "revoke":
            revoke_terminal_credential(actor=world.city_admin, terminal=agent_terminal.terminal)
        else:
            issue_terminal_credential(actor=world.city_admin, terminal=agent_terminal.terminal)
        got = waiting.result()
    assert got.status_code == 401 and got.json()["code"] == "unauthorized"
    if settings.REDIS_URL:
        assert time.monotonic() - started < POLL_SECONDS - 1
    # And the next request with it too.
    assert poll(relay_server, agent_terminal.credential, session()).status_code == 401


@pytest.mark.django_db(transaction=True)
def test_a_second_agent_takes_over_and_the_first_is_told(relay_server, agent_terminal):
    first, second = session(), session()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(poll, relay_server, agent_terminal.credential, first)
        time.sleep(1.0)
        pool2 = concurrent.futures.ThreadPoolExecutor(1)
        newer = pool2.submit(poll, relay_server, agent_terminal.credential, second)
        told = waiting.result()
    assert told.status_code == 409 and told.json()["code"] == "taken-over"
    assert newer.result().status_code == 204
    pool2.shutdown()
    # The first agent coming back does not take the terminal back.
    assert poll(relay_server, agent_terminal.credential, first).status_code == 409
    presence = TerminalPresence.objects.get(terminal=agent_terminal.terminal)
    assert presence.agent_session == second and presence.taken_over_at is not None
    assert AuditEntry.objects.filter(action="relay.take_over", target=agent_terminal.terminal.name).exists()


@pytest.mark.django_db(transaction=True)
def test_another_terminals_conversation_is_invisible(relay_server, agent_terminal, world, tmp_path):
    other = make_terminal(world, tmp_path, name="店頭", provider=world.shop, admin=world.shop_admin)
    conv = engine.start_conversation(terminal_id=other.terminal.pk, program_name="identify", params={})
    sess = session()
    assert poll(relay_server, agent_terminal.credential, sess).status_code == 204
    refused = post(
        relay_server,
        agent_terminal.credential,
        sess,
        f"/relay/v1/conversations/{conv.id}/scripts/0",
        encode_response_script([b"\x90\x00"]),
    )
    assert refused.status_code == 404 and refused.json()["code"] == "unknown-conversation"
    conv.refresh_from_db()
    assert conv.state == "queued" and conv.agent_session == ""


@pytest.mark.django_db(transaction=True)
def test_hello_says_which_terminal(relay_server, agent_terminal):
    got = httpx.get(
        relay_server.url + "/relay/v1/hello",
        timeout=10,
        headers={"Authorization": f"Terminal {agent_terminal.credential}"},
    )
    assert got.status_code == 200 and got.json()["terminal"] == "窓口1"


@pytest.mark.django_db(transaction=True)
def test_a_huge_body_is_refused_before_it_is_read(relay_server, agent_terminal):
    got = post(
        relay_server,
        agent_terminal.credential,
        session(),
        "/relay/v1/conversations/00000000-0000-0000-0000-000000000000/scripts/0",
        b"\xab" * (2 << 20),
    )
    assert got.status_code == 413 and got.json()["code"] == "too-large"


def test_a_jobs_change_comes_in_the_answer_to_the_last_post_of_its_read(relay_server, world, settings):
    """A load job is two conversations (read the card, then change it): the answer to the read's
    last POST is already the change's first script, so the whole job costs one poll plus one POST
    per script, and no wait for a poll in between."""
    from loading import services
    from loading.models import Job
    from tests.loading.jobs_support import Agent, open_all_day, setup

    open_all_day(settings)
    s = setup(world)
    credential = issue_terminal_credential(actor=world.city_admin, terminal=s.terminal)
    card = VirtualCard.create()
    first = Agent(s.terminal, card).run(
        services.start_read(operator=world.city_operator, terminal=s.terminal, request_key="r1")
    )
    assert first.state == Job.State.SUCCEEDED
    job = services.start_load(
        operator=world.city_operator, terminal=s.terminal, read_job=first,
        items=[services.LoadItem(s.c)], consent=True, request_key="l1",
    )
    sess = session()
    requests = {"poll": 0, "post": 0}
    got = poll(relay_server, credential, sess)
    requests["poll"] += 1
    conversations = []
    while got.status_code == 200:
        conv_id = got.headers["X-Cardap-Script-Id"].split("/")[0]
        if not conversations or conversations[-1] != conv_id:
            conversations.append(conv_id)
        got = post(relay_server, credential, sess, got.headers["X-Admin-Next-URI"], run_on(card, got.content))
        requests["post"] += 1
    assert got.status_code == 204, got.text
    assert got.headers["X-Cardap-Conversation-State"] == "finished"
    job.refresh_from_db()
    assert job.state == Job.State.SUCCEEDED, job.error_message
    assert s.c.aid in card.info()["instances"]
    convs = CardConversation.objects.filter(pk__in=conversations).order_by("created_at")
    assert [c.program for c in convs] == ["card-read", "card-change"]
    assert requests == {"poll": 1, "post": sum(c.round_trips for c in convs)}


@pytest.mark.django_db(transaction=True)
def test_the_relay_answers_in_the_agents_language_without_the_browser_stack(relay_server, agent_terminal):
    """/relay/ runs only the middleware it needs (config.asgi.RELAY_MIDDLEWARE): the message in
    the request's Accept-Language (Japanese by default) and the security headers, but nothing of
    the browser stack — no session or CSRF cookie, no content security policy, no Vary: Cookie."""
    def refused(**headers: str) -> httpx.Response:
        return httpx.post(
            relay_server.url + "/relay/v1/poll",
            json={"session": session()},
            timeout=10,
            headers={"Authorization": "Terminal cat_deadbeef_notavalidsecret", **headers},
        )

    japanese, english = refused(), refused(**{"Accept-Language": "en"})
    assert japanese.status_code == english.status_code == 401
    assert "資格情報" in japanese.json()["message"] and japanese.headers["Content-Language"] == "ja"
    assert english.json()["message"].isascii() and english.headers["Content-Language"] == "en"
    hello = httpx.get(
        relay_server.url + "/relay/v1/hello",
        timeout=10,
        headers={
            "Authorization": f"Terminal {agent_terminal.credential}",
            "Cookie": "sessionid=x; csrftoken=y",
        },
    )
    assert hello.status_code == 200 and hello.json()["terminal"] == "窓口1"
    for got in (japanese, english, hello):
        assert got.headers["X-Content-Type-Options"] == "nosniff"
        assert "Content-Security-Policy" not in got.headers
        assert "set-cookie" not in got.headers
        assert "Cookie" not in got.headers.get("Vary", "")
