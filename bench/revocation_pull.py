"""Benchmark: a provider's delta pull of a 10,000-entry page, and the 304 (ETag) path, with 50
concurrent clients against one web process (gunicorn, 1 worker, 8 threads) on 127.0.0.1.

    .venv/bin/python bench/revocation_pull.py [--clients 50] [--page-requests 300] [--etag-requests 5000]

Server time is gunicorn's own per-request time (access log %(D)s); requests per second are
measured by the clients over the phase. Bounded by request count and by --max-seconds per phase.
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


def phase(port: int, token: str, *, clients: int, total: int, max_seconds: float, etag: str | None) -> dict:
    lock = threading.Lock()
    state = {"left": total, "done": 0, "bytes": 0, "status": {}}
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
            conn.request("GET", PAGE, headers=headers)
            response = conn.getresponse()
            body = response.read()
            with lock:
                state["done"] += 1
                state["bytes"] += len(body)
                state["status"][response.status] = state["status"].get(response.status, 0) + 1
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
    }


def server_times(log: Path, status: str) -> list[float]:
    out = []
    for line in log.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "/api/v1/revocations/" and parts[1] == status:
            out.append(int(parts[2]) / 1000)  # microseconds -> ms
    return out


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--page-requests", type=int, default=300)
    parser.add_argument("--etag-requests", type=int, default=5000)
    parser.add_argument("--max-seconds", type=float, default=120)
    args = parser.parse_args()
    token = prepare()
    port = free_port()
    log = Path(tempfile.mkdtemp()) / "access.log"
    env = {
        **os.environ,
        "DATABASE_URL": common.DB_URL,
        "CARDAP_DEMO": "1",
        "LOG_LEVEL": "WARNING",
        "REVOCATION_API_RATE": "100000000/min",
        "DB_CONN_MAX_AGE": "600",
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "config.wsgi",
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
    try:
        for _ in range(100):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", PAGE, headers={"Authorization": f"Bearer {token}"})
                first = conn.getresponse()
                first.read()
                etag = first.getheader("ETag")
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise SystemExit("web process did not start")
        # Baseline: one client at a time, so server time is the request's own cost.
        phase(port, token, clients=1, total=20, max_seconds=args.max_seconds, etag=None)
        phase(port, token, clients=1, total=200, max_seconds=args.max_seconds, etag=etag)
        time.sleep(1)
        alone_full, alone_304 = server_times(log, "200")[1:], server_times(log, "304")
        log.write_text("")
        page = phase(
            port,
            token,
            clients=args.clients,
            total=args.page_requests,
            max_seconds=args.max_seconds,
            etag=None,
        )
        cached = phase(
            port,
            token,
            clients=args.clients,
            total=args.etag_requests,
            max_seconds=args.max_seconds,
            etag=etag,
        )
        time.sleep(1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    full, not_modified = server_times(log, "200"), server_times(log, "304")
    print(
        f"one client alone: 10,000-entry page server time p50 {pct(alone_full, 50):.0f} ms, "
        f"p95 {pct(alone_full, 95):.0f} ms; "
        f"304 p50 {pct(alone_304, 50):.1f} ms, p95 {pct(alone_304, 95):.1f} ms"
    )
    print(f"{args.clients} concurrent clients, one gunicorn process (gthread, 8 threads), 127.0.0.1")
    print(
        f"10,000-entry page ({page['bytes'] / max(page['requests'], 1) / 1e6:.2f} MB): "
        f"{page['requests']} requests "
        f"in {page['seconds']:.1f} s = {page['rps']:.1f} req/s; server time p50 {pct(full, 50):.0f} ms, "
        f"p95 {pct(full, 95):.0f} ms; statuses {page['status']}"
    )
    print(
        f"304 path: {cached['requests']} requests in {cached['seconds']:.1f} s = {cached['rps']:.0f} req/s; "
        f"server time p50 {pct(not_modified, 50):.1f} ms, p95 {pct(not_modified, 95):.1f} ms; "
        f"statuses {cached['status']}"
    )


if __name__ == "__main__":
    main()
