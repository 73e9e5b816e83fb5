"""`make run`'s start-up for real (scripts/run-demo.sh, as the Makefile calls it): the demo data,
the virtual card in a vpcd reader, the real ``cardap-agent`` of the demo terminal on it and the
uvicorn server. The agent connects and reports the card; its credential reached it through a
0600 file and never appeared on the console; when the server stops, the agent stops too.
Run under ``flock /tmp/cardap-pcsc.lock``."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.pcsc.readers import card_present, list_readers, vpcd_ports
from tests.relay.live import ROOT, free_port, wait_until

pytestmark = pytest.mark.pcsc

BIN = Path(sys.executable).parent


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of every descendant of ``pid``."""
    parents: dict[int, int] = {}
    cmdlines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        cmdlines[int(entry.name)] = cmdline
    found: dict[int, str] = {}
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = cmdlines[child]
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _presence(db: Path) -> tuple | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return con.execute(
                "SELECT p.card_present, p.reader, p.atr, p.agent_version FROM loading_terminalpresence p "
                "JOIN operators_terminal t ON t.id = p.terminal_id WHERE t.name = ?",
                ("窓口端末1",),
            ).fetchone()
    except sqlite3.Error:
        return None


def test_make_run_starts_the_real_agent_on_the_virtual_card(pcscd, tmp_path):
    if not (BIN / "cardap-agent").exists():
        pytest.fail(f"{BIN}/cardap-agent is missing: make install / install-test installs ./agent")
    listed = list_readers()
    free = [(r, port) for r, port in vpcd_ports().items() if r in listed and not card_present(r)]
    assert free, "no free vpcd reader slot"
    reader, vcard_port = free[0]
    var = tmp_path / "var"
    port = free_port()
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("DJANGO", "DATABASE", "REDIS", "PYTEST", "CARDAP"))
    }
    env.update(
        CARDAP_VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'cardap.sqlite3'}",
        VCARD_PORT=str(vcard_port),
        PYTHONPATH=str(ROOT),
    )
    console = tmp_path / "console.log"
    with console.open("wb") as out:
        script = subprocess.Popen(  # noqa: S603
            ["scripts/run-demo.sh", str(BIN), "127.0.0.1", str(port)],  # noqa: S607
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    agent_log = var / "agent.log"
    try:
        def connected() -> bool:
            assert script.poll() is None, console.read_text()
            row = _presence(var / "cardap.sqlite3")
            return row is not None and bool(row[0]) and "connected to" in agent_log.read_text()

        try:
            wait_until(connected, 180, "the demo terminal's agent to connect with the card present")
        except TimeoutError:
            log = agent_log.read_text() if agent_log.exists() else "(no agent log)"
            raise AssertionError(f"console:\n{console.read_text()}\nagent:\n{log}") from None
        card_in, reported_reader, atr, version = _presence(var / "cardap.sqlite3")  # type: ignore[misc]
        assert reported_reader == reader and atr.upper().startswith("3BE000FF8131FE4514")
        assert version.startswith("cardap-agent/")

        credential_file = var / "demo-terminal.credential"
        assert stat.S_IMODE(credential_file.stat().st_mode) == 0o600
        credential = credential_file.read_text().strip()
        text = console.read_text()
        assert credential and credential not in text and credential not in agent_log.read_text()
        assert str(credential_file) in text and "Terminal agent: cardap-agent" in text
        assert "readable by other users" not in agent_log.read_text()

        # The server stops (as when it dies or Ctrl+C reaches it): the agent stops with it.
        children = _children(script.pid)
        server = next(pid for pid, cmd in children.items() if "uvicorn" in cmd)
        agent = next(pid for pid, cmd in children.items() if "cardap-agent" in cmd)
        vcard = next(pid for pid, cmd in children.items() if "vcard serve" in cmd)
        os.kill(server, signal.SIGTERM)
        assert script.wait(30) in (0, 128 + signal.SIGTERM)  # uvicorn ends as its signal says
        wait_until(lambda: not _alive(agent) and not _alive(vcard), 20, "the agent and the card to stop")
        assert "stopped" in agent_log.read_text()
    finally:
        if script.poll() is None:
            os.killpg(script.pid, signal.SIGTERM)
            try:
                script.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(script.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and card_present(reader):
            time.sleep(0.2)
