"""The relay's HTTP endpoints, used by the terminal agent (docs/relay-protocol.md).

- ``POST /relay/v1/poll``: the long poll. The agent reports its state (JSON) and waits up to
  RELAY_POLL_SECONDS for work; the answer is the next command script (AA) or 204.
- ``POST /relay/v1/conversations/<id>/scripts/<seq>``: the agent's response script (AB) for
  script ``seq``; the answer is the next command script, or 204 with the outcome.
- ``GET /relay/v1/hello``: is the credential accepted (``cardap-agent check``).

The poll is async (one process holds thousands of idle agents); the step is a short plain view.
Every refusal is a 4xx with a stable ``code`` and a precise ``message`` (JSON), is audited, and
changes nothing. No APDU data is ever logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt

from gpcard.script import (
    ADMIN_PROTOCOL,
    CONTENT_TYPE_COMMAND_SCRIPT,
    CONTENT_TYPE_RESPONSE_SCRIPT,
    HEADER_NEXT_URI,
    HEADER_PROTOCOL,
    HEADER_SCRIPT_STATUS,
)
from loading import engine, relay_auth, wakeups
from loading import relay_services as services
from operators.audit import client_ip, record
from operators.models import Terminal

log = logging.getLogger(__name__)

RELAY_VERSION = "1"
HEADER_RELAY = "X-Cardap-Relay"
HEADER_SESSION = "X-Cardap-Agent-Session"
HEADER_SCRIPT_ID = "X-Cardap-Script-Id"
HEADER_STEP = "X-Cardap-Step"
HEADER_COMMANDS = "X-Cardap-Commands"
HEADER_STATE = "X-Cardap-Conversation-State"
MAX_STATE_BODY = 4096


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


def _refused(
    request: HttpRequest, refusal: Refusal, terminal: Terminal | None, credential: str = ""
) -> HttpResponse:
    """The 4xx answer, audited (``relay.auth_failed`` or ``relay.refused``)."""
    detail = {"code": refusal.code, "status": refusal.status, "path": request.path[:120], **refusal.detail}
    if terminal is None:
        detail["credential_id"] = relay_auth.credential_id(credential)
    record(
        action="relay.auth_failed" if refusal.status == 401 else "relay.refused",
        request=request,
        actor=f"terminal:{terminal.name}" if terminal else "terminal:?",
        provider_id=terminal.provider_id if terminal else None,
        target=terminal.name if terminal else "",
        detail=detail,
    )
    log.info("relay refused %s %s: %s (%s)", request.method, request.path, refusal.code, refusal.status)
    response = JsonResponse({"code": refusal.code, "message": refusal.message}, status=refusal.status)
    response[HEADER_RELAY] = RELAY_VERSION
    if refusal.status == 401:
        response["WWW-Authenticate"] = relay_auth.KEYWORD
    return response


def _unauthorized() -> Refusal:
    return Refusal(401, "unauthorized", _("端末の資格情報が無効です（失効・更新済み、または端末が無効）。"))


def _taken_over() -> Refusal:
    return Refusal(409, "taken-over", _("同じ資格情報の別のエージェントがこの端末を引き継ぎました。"))


def _script_response(step: engine.Script) -> HttpResponse:
    response = HttpResponse(step.body, content_type=CONTENT_TYPE_COMMAND_SCRIPT)
    response[HEADER_PROTOCOL] = ADMIN_PROTOCOL
    response[HEADER_RELAY] = RELAY_VERSION
    response[HEADER_NEXT_URI] = reverse(
        "relay:step", kwargs={"conversation_id": step.conversation_id, "seq": step.seq}
    )
    response[HEADER_SCRIPT_ID] = f"{step.conversation_id}/{step.seq}"
    response[HEADER_STEP] = step.label.encode("ascii", "replace").decode()
    response[HEADER_COMMANDS] = str(step.commands)
    return response


def _ended_response(step: engine.Ended) -> HttpResponse:
    response = HttpResponse(status=204)
    response[HEADER_PROTOCOL] = ADMIN_PROTOCOL
    response[HEADER_RELAY] = RELAY_VERSION
    response[HEADER_SCRIPT_STATUS] = "ok"
    response[HEADER_STATE] = step.state
    return response


def _no_work() -> HttpResponse:
    response = HttpResponse(status=204)
    response[HEADER_PROTOCOL] = ADMIN_PROTOCOL
    response[HEADER_RELAY] = RELAY_VERSION
    return response


# --- the long poll ----------------------------------------------------------------------------


def _parse_state(request: HttpRequest) -> services.AgentState:
    if len(request.body) > MAX_STATE_BODY:
        message = _("ポーリングの本文が大きすぎます（上限 %(n)d バイト）。")
        raise Refusal(413, "too-large", message % {"n": MAX_STATE_BODY})
    if request.content_type != "application/json":
        raise Refusal(415, "content-type", _("ポーリングの本文は application/json です。"))
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise Refusal(400, "malformed", _("ポーリングの本文がJSONではありません。")) from None
    try:
        return services.AgentState.parse(data)
    except services.BadState as exc:
        raise Refusal(400, "malformed", str(exc)) from None


def _authenticate(credential: str) -> Terminal | None:
    try:
        return relay_auth.terminal_for(credential)
    finally:
        connections.close_all()


def _look(
    request: HttpRequest,
    credential: str,
    terminal: Terminal | None,
    state: services.AgentState | None,
    session: str,
) -> HttpResponse | None:
    """One look at the database for a waiting poll: still authorised (``terminal`` None: check the
    credential again), still holding the terminal, work to hand out? (``state`` on the first
    look: record the report.)"""
    try:
        if terminal is None:
            terminal = relay_auth.terminal_for(credential)
            if terminal is None:
                raise _unauthorized()
        if state is not None:
            if not services.report_presence(terminal=terminal, state=state, address=client_ip(request)):
                raise _taken_over()
        elif not services.holds_terminal(terminal_id=terminal.pk, session=session):
            raise _taken_over()
        for _attempt in range(3):
            conv = engine.open_conversation_for(terminal.pk)
            if conv is None:
                return None
            step = engine.next_script(str(conv.id), agent_session=session)
            if isinstance(step, engine.Script):
                log.info(
                    "terminal %s: script %s/%d (%s, %d commands) handed out",
                    terminal.pk,
                    step.conversation_id,
                    step.seq,
                    step.label,
                    step.commands,
                )
                return _script_response(step)
        return None
    except Refusal as refusal:
        return _refused(request, refusal, terminal, credential)
    finally:
        # A waiting poll holds no database connection: thousands wait, the database has a few
        # hundred connections at most.
        connections.close_all()


@csrf_exempt
async def poll(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return JsonResponse({"code": "method", "message": "POST"}, status=405, headers={"Allow": "POST"})
    credential = relay_auth.credential_from(request)
    # Not thread-sensitive: the database work of all waiting polls shares the default thread
    # pool instead of holding a thread each.
    terminal = await sync_to_async(_authenticate, thread_sensitive=False)(credential)
    refuse = sync_to_async(_refused, thread_sensitive=False)
    if terminal is None:
        return await refuse(request, _unauthorized(), None, credential)
    try:
        state = _parse_state(request)
    except Refusal as bad:
        return await refuse(request, bad, terminal, credential)
    look = sync_to_async(_look, thread_sensitive=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + settings.RELAY_POLL_SECONDS
    # Listening before the first look: a notification cannot fall between look and wait.
    async with wakeups.listen(terminal.pk) as bell:
        answer = await look(request, credential, terminal, state, state.session)
        while answer is None:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await bell.wait(remaining):
                # Nothing happened for this terminal: poll again. (A credential revoked where no
                # notification reaches this process is still never answered with a 2xx.)
                if await sync_to_async(_authenticate, thread_sensitive=False)(credential) is None:
                    return await refuse(request, _unauthorized(), None, credential)
                return _no_work()
            answer = await look(request, credential, None, None, state.session)
        return answer


# --- the step ---------------------------------------------------------------------------------


@csrf_exempt
def step(request: HttpRequest, conversation_id: str, seq: int) -> HttpResponse:
    credential = relay_auth.credential_from(request)
    terminal = relay_auth.terminal_for(credential)
    detail = {"conversation": str(conversation_id), "seq": seq}
    try:
        if terminal is None:
            raise _unauthorized()
        if request.method != "POST":
            raise Refusal(405, "method", _("応答スクリプトは POST で送ります。"), **detail)
        length = int(request.headers.get("Content-Length") or 0)
        if length > engine.MAX_RESPONSE_SCRIPT:
            message = _("応答スクリプトが大きすぎます（%(n)d バイト、上限 %(max)d バイト）。")
            raise Refusal(
                413, "too-large", message % {"n": length, "max": engine.MAX_RESPONSE_SCRIPT}, **detail
            )
        if request.content_type != CONTENT_TYPE_RESPONSE_SCRIPT.split(";")[0]:
            message = _("応答スクリプトの Content-Type は %(ct)s です。")
            raise Refusal(415, "content-type", message % {"ct": CONTENT_TYPE_RESPONSE_SCRIPT}, **detail)
        session = request.headers.get(HEADER_SESSION, "")
        if not services.holds_terminal(terminal_id=terminal.pk, session=session):
            raise _taken_over()
        try:
            result = engine.submit_responses(
                conversation_id=str(conversation_id),
                terminal_id=terminal.pk,
                seq=seq,
                body=request.body,
                agent_session=session,
            )
        except engine.ConversationRefused as exc:
            raise Refusal(exc.status, exc.code, exc.message, **detail) from None
    except Refusal as refusal:
        return _refused(request, refusal, terminal, credential)
    if isinstance(result, engine.Ended):
        log.info("terminal %s: conversation %s ended %s", terminal.pk, result.conversation_id, result.state)
        # The next conversation already queued for this terminal (the change that follows a
        # job's read) goes out as the answer to this POST: the agent runs it at once instead of
        # first polling for it.
        following = _following_script(terminal, session)
        if following is None:
            return _ended_response(result)
        result = following
    if isinstance(result, engine.Script):
        log.info(
            "terminal %s: script %s/%d (%s, %d commands) handed out",
            terminal.pk,
            result.conversation_id,
            result.seq,
            result.label,
            result.commands,
        )
        return _script_response(result)
    return _ended_response(result)


def _following_script(terminal: Terminal, session: str) -> engine.Script | None:
    """The first (or current) script of the terminal's open conversation, for this agent session."""
    conv = engine.open_conversation_for(terminal.pk)
    if conv is None:
        return None
    step = engine.next_script(str(conv.id), agent_session=session)
    return step if isinstance(step, engine.Script) else None


def hello(request: HttpRequest) -> HttpResponse:
    credential = relay_auth.credential_from(request)
    terminal = relay_auth.terminal_for(credential)
    if terminal is None:
        return _refused(request, _unauthorized(), None, credential)
    response = JsonResponse(
        {
            "relay": RELAY_VERSION,
            "terminal": terminal.name,
            "location": terminal.location,
            "provider": terminal.provider.name,
            "poll_seconds": settings.RELAY_POLL_SECONDS,
        },
        json_dumps_params={"ensure_ascii": False},
    )
    response[HEADER_RELAY] = RELAY_VERSION
    return response
