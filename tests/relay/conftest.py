"""Fixtures for the relay over HTTP: a real ASGI server process on the test database, a terminal
with its credential in a file, and the real ``cardap-agent`` installed in a fresh virtualenv."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loading.models import TerminalPresence
from operators.models import Terminal
from operators.services import issue_terminal_credential
from tests.pcsc.readers import PcscCard, insert_card, pcscd_service
from tests.relay.live import ROOT, Agent, LiveServer, wait_until
from vcard import VirtualCard

AGENT_VENVS = ROOT / "var" / "test-agent-venv"


@pytest.fixture(scope="session")
def _relay_server_process(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    with django_db_blocker.unblock():
        server = LiveServer(tmp_path_factory.mktemp("relay") / "server.log")
        server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def relay_server(transactional_db, _relay_server_process) -> LiveServer:
    """The ASGI server process (one per test session); each test's data is committed so it sees it."""
    server = _relay_server_process
    if server.proc is None:  # a test stopped it (restart scenarios)
        server.start()
    return server


@dataclass
class AgentTerminal:
    terminal: Terminal
    credential: str
    credential_file: Path


def make_terminal(world, tmp_path: Path, name: str = "窓口1", provider=None, admin=None) -> AgentTerminal:
    provider = provider or world.city
    admin = admin or world.city_admin
    terminal = Terminal.objects.create(
        provider=provider, name=name, location="本庁舎1階", administrator=admin
    )
    credential = issue_terminal_credential(actor=admin, terminal=terminal)
    path = tmp_path / f"credential-{terminal.pk}"
    path.write_text(credential + "\n")
    path.chmod(0o600)
    return AgentTerminal(terminal, credential, path)


@pytest.fixture
def agent_terminal(world, tmp_path) -> AgentTerminal:
    return make_terminal(world, tmp_path)


def _agent_sources_digest() -> str:
    h = hashlib.sha256()
    for base in (ROOT / "agent", ROOT / "gpcard"):
        for path in sorted(base.rglob("*")):
            if (
                path.is_file()
                and "egg-info" not in str(path)
                and "/build/" not in str(path)
                and "__pycache__" not in str(path)
            ):
                h.update(str(path.relative_to(ROOT)).encode())
                h.update(path.read_bytes())
    return h.hexdigest()[:16]


def install_agent(venv: Path) -> Path:
    """``pip install ./agent`` into a fresh virtualenv; returns its ``cardap-agent``."""
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)  # noqa: S603
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    done = subprocess.run(  # noqa: S603
        [*pip, str(ROOT / "agent")], env=env, capture_output=True, text=True, timeout=900, cwd="/"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    shutil.rmtree(ROOT / "agent" / "build", ignore_errors=True)
    return venv / "bin" / "cardap-agent"


@pytest.fixture(scope="session")
def agent_command() -> list[str]:
    """The real cardap-agent, pip-installed in its own virtualenv (reused while agent/ and gpcard/
    are unchanged)."""
    venv = AGENT_VENVS / _agent_sources_digest()
    exe = venv / "bin" / "cardap-agent"
    if not exe.exists():
        AGENT_VENVS.mkdir(parents=True, exist_ok=True)
        for old in AGENT_VENVS.iterdir():
            shutil.rmtree(old, ignore_errors=True)
        install_agent(venv)
    return [str(exe)]


@pytest.fixture(scope="session")
def pcscd() -> Iterator[None]:
    with pcscd_service():
        yield


@pytest.fixture
def vpcd_card(pcscd) -> Iterator[PcscCard]:
    pc = insert_card(VirtualCard.create())
    # The agent owns the card from here on: drop the test's own PC/SC connection.
    with contextlib.suppress(Exception):
        pc.connection.disconnect()  # type: ignore[attr-defined]
    yield pc
    pc.close()


@pytest.fixture
def start_agent(agent_command, tmp_path) -> Iterator:
    """Factory: ``start_agent(terminal, server_url, reader)`` runs the real cardap-agent (stopped
    at the end of the test)."""
    agents: list[Agent] = []

    def start(at: AgentTerminal, server_url: str, reader: str, name: str = "agent") -> Agent:
        agent = Agent(agent_command, server_url, at.credential_file, reader, tmp_path / f"{name}.log").start()
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        agent.stop()


def wait_presence(terminal, timeout: float = 20, **expected) -> TerminalPresence:
    """Wait until the terminal's agent has reported ``expected`` (TerminalPresence fields)."""

    def ok() -> bool:
        p = TerminalPresence.objects.filter(terminal=terminal).first()
        return p is not None and all(getattr(p, k) == v for k, v in expected.items())

    wait_until(ok, timeout, f"presence {expected}")
    return TerminalPresence.objects.get(terminal=terminal)
