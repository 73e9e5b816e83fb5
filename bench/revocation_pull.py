"""Benchmark: a provider's delta pull of a 10,000-entry page, and the 304 (ETag) path, with 50
concurrent clients against one web process (gunicorn, 1 worker, 8 threads) on 127.0.0.1.

    .venv/bin/python bench/revocation_pull.py [--clients 50] [--page-requests 300] [--etag-requests 5000]

Server time is the view's own time in-process (the Server-Timing header the API sends), beside
gunicorn's per-request time (access log %(D)s, which also counts writing the body to a slow
reader); requests per second are measured by the clients over the phase. The previous delta view
(bench/revocation_legacy.py) is mounted beside the current one in the same process
(bench/pull_settings.py), and both run in the same run. Bounded by request count and by
--max-seconds per phase.
Uses the benchmark database (see bench/revocation_ingest.py).
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import revocation_ingest as common  # noqa: E402

PAGE = "/api/v1/revocations/?after=0&limit=10000"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare() -> str:
    """20,000 user numbers on 20,000 cards, a feed changing most of them; returns an API key."""
    common.ensure_database()
    common.django_setup()
    from cardap.apikeys import issue_key
    from cardap.models import Provider
    from revocation import feedfile, services

    common.reset(20_000, 20_000)
    with tempfile.TemporaryDirectory() as tmp:
        path = feedfile.write_feed(
            Path(tmp),
            number=1,
            previous=None,
            changes=feedfile.random_changes(40_000, cards=20_000, seed=3),
            private_key=feedfile.demo_private_key(),
        )
        feed = services.apply_feed(path=path)
    assert feed.state == "applied" and feed.entries_created >= 10_000, feed.entries_created
    _, token = issue_key(provider=Provider.objects.get(name="ベンチ市"), name="bench")
    return token


LEGACY = "/bench-legacy" + PAGE


def phase(
    port: int, token: str, *, clients: int, total: int, max_seconds: float, etag: str | None, path: str = PAGE
) -> dict:
    """`total` requests spread over `clients` threads (one keep-alive connection each), bounded
    by `max_seconds`. Collects each answer's Server-Timing (the view's own time, in-process)."""
    lock = threading.Lock()
    state: dict = {"left": total, "done": 0, "bytes": 0, "status": {}, "app_ms": [], "cpu_ms": []}
    deadline = time.monotonic() + max_seconds
    headers = {"Authorization": f"Bearer {token}"}
    if etag:
        headers["If-None-Match"] = etag

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.monotonic() < deadline:
            with lock:
                if state["left"] <= 0:
                    break
                state["left"] -= 1
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            body = response.read()
            timing = response.getheader("Server-Timing", "")
            with lock:
                state["done"] += 1
                state["bytes"] += len(body)
                state["status"][response.status] = state["status"].get(response.status, 0) + 1
                metrics = dict(part.strip().split(";dur=") for part in timing.split(",") if ";dur=" in part)
                if "app" in metrics:
                    state["app_ms"].append(float(metrics["app"]))
                    state["cpu_ms"].append(float(metrics["cpu"]))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {
        "requests": state["done"],
        "seconds": elapsed,
        "rps": state["done"] / elapsed,
        "status": state["status"],
        "bytes": state["bytes"],
        "app_ms": state["app_ms"],
        "cpu_ms": state["cpu_ms"],
    }


def server_times(log: Path, path: str, status: str) -> list[float]:
    """gunicorn's own request times (access log %(D)s, µs) for one path and status, in ms."""
    out = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == path and parts[1] == status:
            out.append(int(parts[2]) / 1000)
    return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(master: int) -> float:
    """CPU seconds so far of the web process (gunicorn's master and workers) and of every
    PostgreSQL backend connected to the benchmark database (the web process's connections)."""
    import psycopg

    pids = [master] + [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(p) == master
    ]
    with psycopg.connect(common.DB_URL) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        pids += [row[0] for row in cur.fetchall()]
    conn.close()
    return sum(proc_cpu(pid) for pid in pids)


def _ppid(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return -1


def start_server(port: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": common.DB_URL,
        "CARDAP_DEMO": "1",
        "LOG_LEVEL": "WARNING",
        # Per second, not per minute: DRF's throttle keeps (and pickles, twice per request) the
        # list of the key's requests within the period, so a per-minute rate high enough never
        # to refuse would make every request carry tens of thousands of them; production's
        # 120/min keeps at most 120.
        "REVOCATION_API_RATE": "1000000/s",
        "DB_CONN_MAX_AGE": "600",
        "DJANGO_SETTINGS_MODULE": "pull_settings",
    }
    env.pop("REDIS_URL", None)
    return subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
            "--pythonpath",
            str(common.ROOT / "bench"),
            "-w",
            "1",
            "-k",
            "gthread",
            "--threads",
            "8",
            "-b",
            f"127.0.0.1:{port}",
            "--access-logfile",
            str(log),
            "--access-logformat",
            "%(U)s %(s)s %(D)s",
            "--timeout",
            "120",
        ],
        cwd=common.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def first_etag(port: int, token: str, path: str) -> str:
    for _ in range(150):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
            first = conn.getresponse()
            body = first.read()
            assert first.status == 200, (first.status, body[:200])
            return str(first.getheader("ETag"))
        except (OSError, http.client.HTTPException):
            time.sleep(0.2)
    raise SystemExit("web process did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--page-requests", type=int, default=300)
    parser.add_argument("--etag-requests", type=int, default=5000)
    parser.add_argument("--legacy-page-requests", type=int, default=100)
    parser.add_argument("--max-seconds", type=float, default=60)
    args = parser.parse_args()
    token = prepare()
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "access.log"
    load_before = os.getloadavg()
    server = start_server(port, log)
    results: dict[str, dict] = {}
    paths = (("current", PAGE), ("previous", LEGACY))
    try:
        etags = {name: first_etag(port, token, path) for name, path in paths}
        assert etags["current"] == etags["previous"]  # same rule, same tag: only the rendering differs
        bound = args.max_seconds

        def run(key: str, **kw: object) -> None:
            """One phase, with the server's CPU (web process + its PostgreSQL backends) per request."""
            cpu = server_cpu(server.pid)
            out = phase(port, token, max_seconds=bound, **kw)  # type: ignore[arg-type]
            out["server_cpu_ms"] = (server_cpu(server.pid) - cpu) * 1000 / max(out["requests"], 1)
            acc = results.setdefault(key, {"app_ms": [], "cpu_ms": [], "server_cpu": []})
            for field in ("app_ms", "cpu_ms"):
                acc[field] += out[field]
            acc["server_cpu"].append(out["server_cpu_ms"])
            acc.update({k: v for k, v in out.items() if k not in ("app_ms", "cpu_ms")})

        # One client at a time (the request's own cost), current and previous alternately.
        for _round in range(2):
            for name, path in paths:
                run(f"alone page {name}", clients=1, total=10, etag=None, path=path)
                run(f"alone 304 {name}", clients=1, total=100, etag=etags[name], path=path)
        time.sleep(0.5)
        alone_log = {
            name: (server_times(log, path.split("?")[0], "200"), server_times(log, path.split("?")[0], "304"))
            for name, path in paths
        }
        log.write_text("")
        for name, path in paths:
            pages = args.page_requests if name == "current" else args.legacy_page_requests
            run(f"50 page {name}", clients=args.clients, total=pages, etag=None, path=path)
            run(f"50 304 {name}", clients=args.clients, total=args.etag_requests, etag=etags[name], path=path)
        time.sleep(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    load_after = os.getloadavg()
    print(
        f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}; one gunicorn process "
        "(gthread, 8 threads), 127.0.0.1. Server-Timing app = the view's wall time in-process; "
        "server CPU = web process + its PostgreSQL backends, from /proc, per request"
    )
    for name in ("current", "previous"):
        page, nm = results[f"alone page {name}"], results[f"alone 304 {name}"]
        g200, g304 = alone_log[name]
        print(
            f"{name}, one client alone: 10,000-entry page app p50 {pct(page['app_ms'], 50):.1f} ms "
            f"(min {min(page['app_ms']):.1f}, gunicorn p50 {pct(g200[1:], 50):.1f}), server CPU "
            f"{min(page['server_cpu']):.1f} ms; 304 app p50 {pct(nm['app_ms'], 50):.2f} ms (min "
            f"{min(nm['app_ms']):.2f}, gunicorn p50 {pct(g304, 50):.2f}), "
            f"server CPU {min(nm['server_cpu']):.2f} ms"
        )
    for name in ("current", "previous"):
        page, cached = results[f"50 page {name}"], results[f"50 304 {name}"]
        print(
            f"{name}, {args.clients} clients: page ({page['bytes'] / max(page['requests'], 1) / 1e6:.2f} MB) "
            f"{page['requests']} in {page['seconds']:.1f} s = {page['rps']:.1f} pages/s, app p50 "
            f"{pct(page['app_ms'], 50):.0f} ms, server CPU {page['server_cpu_ms']:.1f} ms {page['status']}; "
            f"304: {cached['requests']} in {cached['seconds']:.1f} s = {cached['rps']:.0f}/s, app p50 "
            f"{pct(cached['app_ms'], 50):.1f} ms, "
            f"server CPU {cached['server_cpu_ms']:.2f} ms {cached['status']}"
        )

    def ratio(kind: str, field: str = "app_ms") -> float:
        return pct(results[f"{kind} previous"][field], 50) / pct(results[f"{kind} current"][field], 50)

    rps = results["50 page current"]["rps"] / results["50 page previous"]["rps"]
    print(
        f"previous / current: page alone {ratio('alone page'):.1f}x (server CPU "
        f"{ratio('alone page', 'server_cpu'):.1f}x), 304 alone {ratio('alone 304'):.1f}x (server CPU "
        f"{ratio('alone 304', 'server_cpu'):.1f}x), pages/s with {args.clients} clients {rps:.1f}x"
    )


if __name__ == "__main__":
    main()
