"""Shared set-up of the relay benchmarks: a throw-away SQLite database (or DATABASE_URL), Django
in this process for writing, and a real uvicorn server process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def setup_django(poll_seconds: int) -> dict[str, str]:
    """Point this process (and the server to start) at a fresh database, migrated."""
    env = dict(os.environ)
    env["CARDAP_DEMO"] = "1"
    env["RELAY_POLL_SECONDS"] = str(poll_seconds)
    env["LOG_LEVEL"] = "WARNING"
    if not env.get("DATABASE_URL"):
        db = Path(tempfile.mkdtemp(prefix="cardap-bench-")) / "bench.sqlite3"
        env["DATABASE_URL"] = f"sqlite:///{db}"
    os.environ.update({k: env[k] for k in ("CARDAP_DEMO", "RELAY_POLL_SECONDS", "DATABASE_URL", "LOG_LEVEL")})
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    return env


def make_terminals(n: int) -> list[tuple[int, str]]:
    """n terminals of one live provider, each with a credential: [(terminal id, credential)]."""
    from cardap.models import Provider
    from operators.models import Operator, Terminal
    from operators.services import issue_terminal_credential

    provider, _ = Provider.objects.get_or_create(
        name="ベンチ市",
        defaults={
            "kind": Provider.Kind.MUNICIPALITY,
            "local_gov_code": "131016",
            "status": Provider.Status.LIVE,
        },
    )
    admin, _ = Operator.objects.get_or_create(
        username="bench_admin", defaults={"role": Operator.Role.PROVIDER_ADMIN, "provider": provider}
    )
    out = []
    for i in range(n):
        t = Terminal.objects.create(
            provider=provider, name=f"端末{i:05d}", location="ベンチ", administrator=admin
        )
        out.append((t.pk, issue_terminal_credential(actor=admin, terminal=t)))
    return out


class Server:
    def __init__(self, env: dict[str, str], extra: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--lifespan",
                "off",
                "--no-access-log",
                "--log-level",
                os.environ.get("BENCH_SERVER_LOG", "warning"),
                "--backlog",
                "4096",
                *(extra or []),
            ],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            start_new_session=True,
        )
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("server did not start")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
