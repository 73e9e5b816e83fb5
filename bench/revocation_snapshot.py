"""Benchmark: the signed snapshot of 1,000,000 suspended/revoked user numbers, streamed (current)
against the previous one built in memory, each in its own child process so its memory is its own.

    .venv/bin/python bench/revocation_snapshot.py [--entries 1000000]

Memory: the child's peak resident set size (VmHWM) above its size after a warm-up request
(Django, DRF and the database connection loaded): the target is under 100 MB for 1,000,000
entries. The current snapshot is read through the view (the streamed answer consumed chunk by
chunk, as a WSGI server sends it); its detached signature endpoint is timed too, and the body is
verified against it with the public key alone. Uses the benchmark database (see
bench/revocation_ingest.py).
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


def run_child(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode], check=True, capture_output=True, text=True, timeout=1800
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    load_before = os.getloadavg()
    prepare(args.entries)
    results = {mode: run_child(mode) for mode in ("current", "previous")}
    load_after = os.getloadavg()
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
