"""The agent's work loop: long-poll the server, run each command script it sends against the card,
POST the responses to the URI given, repeat with the script that comes back (docs/relay-protocol.md).

Logs say what happened (connected, card inserted/removed, script N: K commands, stopped at SW
6A84); they never hold APDU data."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import secrets
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cardap_agent import __version__
from cardap_agent.reader import Card, CardGone, ReaderState, Watcher
from gpcard.conversation import agent_continues
from gpcard.script import (
    CONTENT_TYPE_COMMAND_SCRIPT,
    CONTENT_TYPE_RESPONSE_SCRIPT,
    HEADER_NEXT_URI,
    ScriptError,
    encode_response_script,
    parse_command_script,
)

log = logging.getLogger("cardap_agent")

USER_AGENT = f"cardap-agent/{__version__}"
HEADER_SESSION = "X-Cardap-Agent-Session"
HEADER_SCRIPT_ID = "X-Cardap-Script-Id"
HEADER_STATE = "X-Cardap-Conversation-State"
POLL_PATH = "/relay/v1/poll"
HELLO_PATH = "/relay/v1/hello"
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
REMEMBERED_ANSWERS = 16

EXIT_OK, EXIT_CONFIG, EXIT_REFUSED, EXIT_TAKEN_OVER = 0, 2, 3, 4


class ConfigError(Exception):
    """The agent cannot start as configured (message for the terminal administrator)."""


class Stop(Exception):
    """The agent must end: ``code`` is its exit status."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Config:
    server: str
    credential: str
    reader: str | None = None
    ca_file: str | None = None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_config(server: str, credential_file: str, reader: str | None, ca_file: str | None) -> Config:
    parts = urlsplit(server)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"--server {server!r}: an https:// URL of the service is expected")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(f"--server {server!r}: plain http is refused except to this machine; use https://")
    if not credential_file:
        raise ConfigError("--credential-file (or CARDAP_AGENT_CREDENTIAL_FILE) is required")
    path = Path(credential_file)
    try:
        credential = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the credential file {path}: {exc}") from None
    if not credential or any(c.isspace() for c in credential):
        raise ConfigError(f"the credential file {path} must hold the terminal credential on one line")
    with contextlib.suppress(OSError, AttributeError):
        if path.stat().st_mode & 0o077:
            log.warning("credential file %s is readable by other users: chmod 600 it", path)
    if ca_file and not Path(ca_file).is_file():
        raise ConfigError(f"--ca-file {ca_file}: no such file")
    return Config(server.rstrip("/"), credential, reader or None, ca_file or None)


def http_client(config: Config, session: str = "") -> httpx.AsyncClient:
    headers = {
        "Authorization": f"Terminal {config.credential}",
        "User-Agent": USER_AGENT,
    }
    if session:
        headers[HEADER_SESSION] = session
    return httpx.AsyncClient(
        base_url=config.server,
        headers=headers,
        verify=config.ca_file or True,  # the server certificate is always verified
        trust_env=True,  # HTTPS_PROXY / HTTP_PROXY / NO_PROXY
        timeout=httpx.Timeout(connect=10.0, read=90.0, write=20.0, pool=10.0),
        follow_redirects=False,
    )


def _refusal(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('code')}: {body.get('message')}"
    except ValueError:
        return f"HTTP {response.status_code}"


async def check(config: Config) -> tuple[bool, str]:
    """One line saying whether the server is reachable and the credential accepted."""
    async with http_client(config) as http:
        try:
            response = await http.get(HELLO_PATH)
        except httpx.HTTPError as exc:
            return False, f"NG: cannot reach {config.server} ({type(exc).__name__}: {exc})"
    if response.status_code == 401:
        return (
            False,
            f"NG: {config.server} is reachable but refused the credential (revoked, rotated or wrong)",
        )
    if response.status_code != 200:
        return False, f"NG: {config.server} answered HTTP {response.status_code}: {_refusal(response)}"
    hello = response.json()
    return True, (
        f"OK: {config.server} reachable, credential accepted for terminal "
        f"{hello.get('terminal')} ({hello.get('location')}, {hello.get('provider')})"
    )


class Agent:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.session = secrets.token_hex(16)
        self.card = Card()
        self.stopping = asyncio.Event()
        self.state_changed = asyncio.Event()
        self.answers: OrderedDict[str, bytes] = OrderedDict()  # script id -> the AB we POSTed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._backoff = BACKOFF_FIRST
        self._online: bool | None = None
        self.watcher = Watcher(config.reader, self._reader_changed)
        # Every card operation on one thread: a PC/SC card handle stays with the thread that made it.
        self._card_thread = ThreadPoolExecutor(1, thread_name_prefix="card")

    async def _on_card(self, fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._card_thread, fn, *args)

    # --- reader ---------------------------------------------------------------------------------
    def _reader_changed(self, state: ReaderState) -> None:  # from the watcher thread
        log.info("reader: %s", state.describe())
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.state_changed.set)

    def report(self) -> dict[str, Any]:
        state = self.watcher.state
        return {
            "session": self.session,
            "agent": USER_AGENT,
            "reader": state.reader,
            "card_present": state.card_present,
            "atr": state.atr,
        }

    # --- network --------------------------------------------------------------------------------
    async def _pause(self, why: str) -> None:
        if self._online is not False:
            log.warning("server unreachable (%s); retrying with backoff", why)
        self._online = False
        delay = self._backoff * (0.5 + random.random() / 2)  # jitter: terminals do not come back in step
        self._backoff = min(self._backoff * 2, BACKOFF_MAX)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), delay)

    def _reached(self) -> None:
        if self._online is not True:
            log.info("connected to %s as session %s", self.config.server, self.session[:8])
        self._online = True
        self._backoff = BACKOFF_FIRST

    def _fatal(self, response: httpx.Response) -> None:
        if response.status_code == 401:
            raise Stop(EXIT_REFUSED, f"the server refused the credential: {_refusal(response)}")
        if response.status_code == 409 and _refusal(response).startswith("taken-over"):
            raise Stop(EXIT_TAKEN_OVER, "another agent with this terminal's credential took over; stopping")

    # --- the loop -------------------------------------------------------------------------------
    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        self.watcher.start()
        log.info("%s starting: server %s, %s", USER_AGENT, self.config.server, self.watcher.state.describe())
        try:
            async with http_client(self.config, self.session) as http:
                while not self.stopping.is_set():
                    await self._poll_once(http)
        except Stop as stop:
            (log.info if stop.code == EXIT_OK else log.error)("%s", stop)
            return stop.code
        finally:
            self.watcher.stop()
            await self._on_card(self.card.close)
            self._card_thread.shutdown()
        log.info("stopped")
        return EXIT_OK

    async def _poll_once(self, http: httpx.AsyncClient) -> None:
        self.state_changed.clear()
        poll = asyncio.ensure_future(http.post(POLL_PATH, json=self.report()))
        changed = asyncio.ensure_future(self.state_changed.wait())
        stopping = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({poll, changed, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (changed, stopping):
                task.cancel()
        if not poll.done():
            # Reader state changed (or stopping): report it at once with a new poll. A script the
            # server handed out meanwhile is handed out again to this session.
            poll.cancel()
            with contextlib.suppress(BaseException):
                await poll
            return
        try:
            response = poll.result()
        except httpx.HTTPError as exc:
            await self._pause(f"{type(exc).__name__}: {exc}")
            return
        if response.status_code >= 500:
            await self._pause(f"HTTP {response.status_code}")
            return
        self._reached()
        self._fatal(response)
        if response.status_code == 204:
            return
        if response.status_code == 200:
            await self._conversation(http, response)
            return
        log.error("poll refused: HTTP %d %s", response.status_code, _refusal(response))
        await self._pause(f"HTTP {response.status_code}")

    async def _conversation(self, http: httpx.AsyncClient, response: httpx.Response) -> None:
        """Run scripts until the server answers 204 (or refuses)."""
        try:
            while response.status_code == 200:
                script_id = response.headers.get(HEADER_SCRIPT_ID, "")
                uri = response.headers.get(HEADER_NEXT_URI, "")
                if not uri or not response.headers.get("content-type", "").startswith(
                    CONTENT_TYPE_COMMAND_SCRIPT.split(";")[0]
                ):
                    log.error(
                        "the server sent a script without %s or of another type; ignored", HEADER_NEXT_URI
                    )
                    return
                body = self.answers.get(script_id)
                if body is None:
                    body = await self._on_card(self._run_script, script_id, response.content)
                    if body is None:
                        return
                    self.answers[script_id] = body
                    while len(self.answers) > REMEMBERED_ANSWERS:
                        self.answers.popitem(last=False)
                else:
                    log.info("script %s: already run, sending its responses again", script_id)
                answer = await self._post(http, urljoin(self.config.server + "/", uri), body)
                if answer is None:
                    return
                response = answer
            state = response.headers.get(HEADER_STATE, "")
            if response.status_code == 204:
                log.info("conversation ended: %s", state or "done")
            else:
                log.error("script refused: HTTP %d %s", response.status_code, _refusal(response))
        finally:
            await self._on_card(self.card.close)

    async def _post(self, http: httpx.AsyncClient, url: str, body: bytes) -> httpx.Response | None:
        """POST the responses, retrying the same body after network loss or a server restart (the
        server recognises a repeated POST); None when stopping."""
        while not self.stopping.is_set():
            try:
                response = await http.post(
                    url, content=body, headers={"Content-Type": CONTENT_TYPE_RESPONSE_SCRIPT}
                )
            except httpx.HTTPError as exc:
                await self._pause(f"{type(exc).__name__}: {exc}")
                continue
            if response.status_code >= 500:
                await self._pause(f"HTTP {response.status_code}")
                continue
            self._reached()
            self._fatal(response)
            return response
        return None

    def _run_script(self, script_id: str, body: bytes) -> bytes | None:
        """Run a command script in order, stopping after the first unexpected status word."""
        try:
            commands = [c.encode() for c in parse_command_script(body)]
        except ScriptError as exc:
            log.error("script %s is not a command script (%s); not run", script_id, exc)
            return None
        reader = self.watcher.state.reader
        responses: list[bytes] = []
        stopped = ""
        for command in commands:
            try:
                response = self.card.transmit(reader, command)
            except CardGone as exc:
                stopped = f"card not answering ({exc})"
                break
            responses.append(response)
            sw = int.from_bytes(response[-2:], "big")
            if not agent_continues(sw):
                stopped = f"stopped at SW {sw:04X}"
                break
        last = f", last SW {responses[-1][-2:].hex().upper()}" if responses and not stopped else ""
        log.info(
            "script %s: %d commands, ran %d%s%s",
            script_id,
            len(commands),
            len(responses),
            f", {stopped}" if stopped else "",
            last,
        )
        return encode_response_script(responses)
