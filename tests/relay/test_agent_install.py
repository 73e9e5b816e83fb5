"""``pip install ./agent`` in a fresh virtualenv installs the agent with nothing of Django (pyscard,
httpx and the framework-free gpcard only), and its commands run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.relay.conftest import AGENT_VENVS


@pytest.fixture(scope="module")
def agent_venv(agent_command) -> Path:
    return Path(agent_command[0]).parent.parent


def _python(venv: Path, code: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_fresh_install_has_no_django(agent_venv):
    assert agent_venv.parent == AGENT_VENVS
    listed = subprocess.run(
        [str(agent_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.lower()
    names = {line.split("==")[0] for line in listed.splitlines()}
    assert {"cardap-agent", "pyscard", "httpx"} <= names
    assert not {n for n in names if n.startswith(("django", "celery", "cryptography", "cardap"))} - {
        "cardap-agent"
    }
    # Importing everything the agent runs pulls in no Django module.
    out = _python(
        agent_venv,
        "import sys, cardap_agent.cli, cardap_agent.agent, gpcard.script, gpcard.conversation;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'loading')))",
    )
    assert out.strip() == "[]"


def test_commands_run(agent_venv, tmp_path):
    exe = str(agent_venv / "bin" / "cardap-agent")
    version = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and "cardap-agent 0.1.0" in version.stdout
    cred = tmp_path / "cred"
    cred.write_text("cat_x_y\n")
    plain = subprocess.run(
        [exe, "check", "--server", "http://cardap.example.jp", "--credential-file", str(cred)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert plain.returncode == 2 and "plain http is refused" in plain.stderr
    unreachable = subprocess.run(
        [exe, "check", "--server", "http://127.0.0.1:9", "--credential-file", str(cred)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert unreachable.returncode == 1 and unreachable.stdout.startswith("NG: cannot reach")


@pytest.mark.django_db(transaction=True)
def test_check_against_the_server(agent_venv, relay_server, agent_terminal):
    exe = str(agent_venv / "bin" / "cardap-agent")
    args = ["check", "--server", relay_server.url, "--credential-file", str(agent_terminal.credential_file)]
    ok = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.startswith("OK:") and "窓口1" in ok.stdout
    agent_terminal.credential_file.write_text("cat_00000000_wrong\n")
    refused = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    assert refused.returncode == 1 and "refused the credential" in refused.stdout
