"""Benchmark: the signed snapshot of 1,000,000 suspended/revoked user numbers, streamed (current)
against the previous one built in memory, each in its own child process so its memory is its own.

    .venv/bin/python bench/revocation_snapshot.py [--entries 1000000]

Memory: the child's peak resident set size (VmHWM) above its size after a warm-up request
(Django, DRF and the database connection loaded): the target is under 100 MB for 1,000,000
entries. The current snapshot is read through the view (the streamed answer consumed chunk by
chunk, as a WSGI server sends it); its detached signature endpoint is timed too, and the body is
verified against it with the public key alone. Uses the benchmark database (see
bench/revocation_ingest.py).

Under the ASGI server the service runs in (uvicorn), the same snapshot is fetched over HTTP from
a fresh uvicorn process per variant: the current view (an asynchronous iterator) and the view as
it was (a synchronous one, which Django's ASGI handler reads whole before sending), mounted
beside it by bench/pull_settings.py. Memory there is the uvicorn process's VmHWM above its
resident size after a warm-up request; the client reads the body in 1 MiB pieces and checks its
SHA-256 against the detached signature (verified with the public key).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import revocation_ingest as common  # noqa: E402


def prepare(entries: int) -> None:
    """`entries` user numbers on as many cards, every card revoked (COPY, no feed ingest)."""
    common.ensure_database()
    common.django_setup()
    from django.db import connection

    from revocation.models import Feed

    common.reset(entries, entries)
    feed = Feed.objects.create(source="bench", number=1, state=Feed.State.APPLIED, count=entries)
    buf = io.StringIO()
    for n in range(entries):
        buf.write(f"{n:016X}\trevoked\tother\t2026-11-28 12:00:00+00\t{feed.pk}\n")
    buf.seek(0)
    with connection.cursor() as cur:
        cur.cursor.copy_expert(
            "COPY revocation_cardstatus (card_id, status, reason, effective_at, feed_id) FROM STDIN", buf
        )
        cur.execute("ANALYZE revocation_cardstatus")


def rss_mb() -> float:
    return common.peak_rss_mb()


def child(mode: str) -> None:
    common.django_setup()
    from django.conf import settings
    from rest_framework.test import APIRequestFactory

    from cardap.apikeys import issue_key
    from cardap.models import Provider
    from revocation import api

    settings.REVOCATION_API_RATE = "1000000/min"
    settings.ALLOWED_HOSTS = ["*"]
    provider = Provider.objects.get(name="ベンチ市")
    empty, _ = Provider.objects.get_or_create(name="ベンチ空", defaults={"kind": "private", "status": "live"})
    factory = APIRequestFactory()

    def get(view, owner):  # noqa: ANN001, ANN202
        _, token = issue_key(provider=owner, name=f"bench-{mode}")
        return view(factory.get("/", HTTP_AUTHORIZATION=f"Bearer {token}"))

    # Warm-up: every module and the connection loaded, on a provider without entries.
    b"".join(get(api.SnapshotView.as_view(), empty).streaming_content)
    idle = rss_mb()
    start = time.perf_counter()
    if mode == "current":
        digest, size = hashlib.sha256(), 0
        for part in get(api.SnapshotView.as_view(), provider).streaming_content:
            digest.update(part)
            size += len(part)
        seconds = time.perf_counter() - start
        peak = rss_mb()
        start = time.perf_counter()
        signed = json.loads(get(api.SnapshotSignatureView.as_view(), provider).content)
        sign_seconds = time.perf_counter() - start
        public = api.keys.signing_public_key()  # what /public-key/ publishes
        public.verify(base64.b64decode(signed["signature"]), signed["manifest"].encode())
        manifest = json.loads(signed["manifest"])
        assert manifest["sha256"] == digest.hexdigest() and manifest["size"] == size, "signature mismatch"
    else:
        import revocation_legacy as legacy

        body, _signature = legacy.snapshot_body(provider)
        size = len(body)
        seconds = time.perf_counter() - start
        peak, sign_seconds = rss_mb(), 0.0
    print(
        json.dumps(
            {
                "mode": mode,
                "seconds": seconds,
                "size": size,
                "idle": idle,
                "peak": peak,
                "sign_seconds": sign_seconds,
            }
        )
    )


def _status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def under_uvicorn(path: str, tokens: dict[str, str], *, verify: bool) -> dict:
    """One fresh uvicorn process; the snapshot at `path` fetched once for the empty provider
    (warm-up) and once for the bench provider, read in pieces; the server's memory from /proc."""
    import http.client
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "DATABASE_URL": common.DB_URL,
        "CARDAP_DEMO": "1",
        "LOG_LEVEL": "WARNING",
        "REVOCATION_API_RATE": "1000000/min",
        "DJANGO_SETTINGS_MODULE": "pull_settings",
        "PYTHONPATH": str(common.ROOT / "bench"),
    }
    env.pop("REDIS_URL", None)
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=common.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def fetch(url: str, token: str) -> tuple[str, int, float, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("GET", url, headers={"Authorization": f"Bearer {token}", "Host": "127.0.0.1"})
        answer = conn.getresponse()
        assert answer.status == 200, answer.status
        digest, size, started, first = hashlib.sha256(), 0, time.perf_counter(), b""
        while piece := answer.read(1 << 20):
            first = first or piece[:200]
            digest.update(piece)
            size += len(piece)
        conn.close()
        return digest.hexdigest(), size, time.perf_counter() - started, first

    try:
        for _ in range(150):
            try:
                fetch(path, tokens["empty"])
                break
            except (OSError, http.client.HTTPException):
                time.sleep(0.2)
        else:
            raise SystemExit("uvicorn did not start")
        idle = _status_mb(server.pid, "VmRSS")
        sha256, size, seconds, _first = fetch(path, tokens["bench"])
        peak = _status_mb(server.pid, "VmHWM")
        verified = False
        if verify:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request(
                "GET",
                "/api/v1/revocations/snapshot/signature/",
                headers={"Authorization": f"Bearer {tokens['bench']}", "Host": "127.0.0.1"},
            )
            signed = json.loads(conn.getresponse().read())
            conn.close()
            from revocation import keys

            public = keys.signing_public_key()
            public.verify(base64.b64decode(signed["signature"]), signed["manifest"].encode())
            manifest = json.loads(signed["manifest"])
            assert manifest["sha256"] == sha256 and manifest["size"] == size, "signature mismatch"
            verified = True
    finally:
        server.terminate()
        server.wait(timeout=30)
    return {"seconds": seconds, "size": size, "idle": idle, "peak": peak, "verified": verified}


def run_child(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode], check=True, capture_output=True, text=True, timeout=1800
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--child")
    parser.add_argument("--asgi-only", action="store_true", help="only the uvicorn measurements")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    load_before = os.getloadavg()
    prepare(args.entries)
    from cardap.apikeys import issue_key
    from cardap.models import Provider

    empty, _ = Provider.objects.get_or_create(name="ベンチ空", defaults={"kind": "private", "status": "live"})
    tokens = {
        "bench": issue_key(provider=Provider.objects.get(name="ベンチ市"), name="bench-asgi")[1],
        "empty": issue_key(provider=empty, name="bench-asgi")[1],
    }
    asgi = {
        "current": under_uvicorn("/api/v1/revocations/snapshot/", tokens, verify=True),
        "previous": under_uvicorn("/bench-legacy/api/v1/revocations/snapshot/", tokens, verify=False),
    }
    results = {} if args.asgi_only else {mode: run_child(mode) for mode in ("current", "previous")}
    load_after = os.getloadavg()
    for mode, r in asgi.items():
        what = "async iterator" if mode == "current" else "sync iterator, read whole by Django"
        print(
            f"uvicorn, {mode} ({what}): {r['size'] / 1e6:.0f} MB body in {r['seconds']:.1f} s, server RSS "
            f"idle {r['idle']:.0f} MB, peak {r['peak']:.0f} MB (+{r['peak'] - r['idle']:.0f} MB)"
            + (", signature verified" if r["verified"] else "")
        )
    if not results:
        print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}; {args.entries:,} entries")  # noqa: E501
        return
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}; {args.entries:,} entries")
    for mode, r in results.items():
        extra = (
            f"; detached signature (second pass) {r['sign_seconds']:.1f} s, verified"
            if mode == "current"
            else ""
        )
        print(
            f"{mode}: {r['size'] / 1e6:.0f} MB body in {r['seconds']:.1f} s, RSS idle {r['idle']:.0f} MB, "
            f"peak {r['peak']:.0f} MB (+{r['peak'] - r['idle']:.0f} MB){extra}"
        )
    cur, old = results["current"], results["previous"]
    grown = {k: r["peak"] - r["idle"] for k, r in results.items()}
    print(
        f"memory above idle, previous / current: {grown['previous'] / max(grown['current'], 1):.1f}x "
        "(current's growth counted as at least 1 MB); "
        f"time previous / current: {old['seconds'] / cur['seconds']:.2f}x"
    )


if __name__ == "__main__":
    main()
