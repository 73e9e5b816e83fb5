"""Benchmark: ingest a 1,000,000-change revocation feed into PostgreSQL (set-based: streamed
COPY into a staging table, then a few SQL statements), against a plain per-row ORM ingest as a
ratio in the same run (the ORM one on a smaller sample, extrapolated and stated as such).

    .venv/bin/python bench/revocation_ingest.py [--changes 1000000] [--orm-sample 10000] [--rounds 2]

The current ingest and the previous one (bench/revocation_legacy.py) run alternately in the same
run, so their ratio holds even when the shared machine's load changes; a validation-only pass
(no database) and per-phase timings show where the time goes.

Uses its own database (default postgres://postgres@127.0.0.1:5432/cardap_bench, created if
missing; override with BENCH_DATABASE_URL). Each ingest runs in a child process so its peak
memory (VmHWM) is measured alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cardap_bench")


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = DB_URL
    os.environ.setdefault("CARDAP_DEMO", "1")
    os.environ.pop("REDIS_URL", None)
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    import django

    django.setup()


def ensure_database() -> None:
    import psycopg

    base, name = DB_URL.rsplit("/", 1)
    conn = psycopg.connect(base + "/postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if cur.fetchone() is None:
            cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def reset(installations: int, cards: int) -> None:
    """Empty revocation state; one provider with 4 card APs and `installations` user numbers."""
    import io

    from django.core.management import call_command
    from django.db import connection

    from cardap.models import CardAP, Provider

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE revocation_revocationentry, revocation_cardstatus, revocation_providerpull, "
            "revocation_feed, cardap_cardapinstallation CASCADE"
        )
    provider, _ = Provider.objects.get_or_create(
        name="ベンチ市", defaults={"kind": "municipality", "status": "live"}
    )
    aps = []
    for i in range(4):
        ap, _ = CardAP.objects.get_or_create(
            aid=f"D392F0BE{i:012X}",
            defaults={
                "provider": provider,
                "name": f"bench-{i}",
                "type": "A",
                "area": "extended",
                "status": "approved",
            },
        )
        aps.append(ap.pk)
    step = max(1, cards // installations)
    buf = io.StringIO()
    for n in range(installations):
        buf.write(f"{(n * step):016X}\t{aps[n % 4]}\tU{n:09d}\tpersonalised\t2026-01-01 00:00:00+00\n")
    buf.seek(0)
    with connection.cursor() as cur:
        with cur.cursor.copy(
            "COPY cardap_cardapinstallation (card_id, card_ap_id, user_number, state, installed_at) "
            "FROM STDIN"
        ) as copy:
            copy.write(buf.getvalue())
        cur.execute("ANALYZE cardap_cardapinstallation")


def orm_ingest(path: Path) -> int:
    """The plain way, one change at a time through the ORM (the baseline)."""
    from django.db import transaction

    from cardap.models import CardAPInstallation
    from revocation import feedfile
    from revocation.keys import feed_public_key
    from revocation.models import CardStatus, Feed, RevocationEntry

    feed = Feed.objects.create(source=str(path))
    with path.open("rb") as stream, transaction.atomic():
        header = feedfile.read_header(stream, feedfile.signature_path(path).read_bytes(), feed_public_key())
        n = 0
        for c in feedfile.iter_changes(stream, header, max_changes=10**7):
            n += 1
            cs = CardStatus.objects.filter(card_id=c.card).first()
            if cs is not None and (
                cs.status == "revoked" or (c.status != "revoked" and c.at <= cs.effective_at)
            ):
                continue
            if cs is None:
                cs = CardStatus(card_id=c.card)
            cs.status, cs.reason, cs.effective_at, cs.feed = c.status, c.reason, c.at, feed
            cs.save()
            for inst in CardAPInstallation.objects.filter(card_id=c.card).exclude(state="deleted"):
                RevocationEntry.objects.create(
                    card_ap_id=inst.card_ap_id,
                    user_number=inst.user_number,
                    status=c.status,
                    reason=c.reason,
                    effective_at=c.at,
                    feed=feed,
                )
        feed.state = Feed.State.APPLIED
        feed.save()
    return n


def peak_rss_mb() -> float:
    """This process's peak resident set size (VmHWM). Not ru_maxrss: Linux carries that over
    fork and exec, so a child would report its parent's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def backend_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a PostgreSQL backend on this machine, from /proc: a figure
    that stays meaningful when other work on the shared machine stretches the wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def parse_only(path: Path) -> dict:
    """Validation alone, no database: the current parser, the previous one, and SHA-256 alone."""
    import hashlib

    import revocation_legacy as legacy

    from revocation import feedfile
    from revocation.keys import feed_public_key

    out = {}
    for name, parse in (("parse", feedfile.iter_rows), ("parse_legacy", legacy.iter_changes)):
        with path.open("rb") as stream:
            start = time.perf_counter()
            header = feedfile.read_header(
                stream, feedfile.signature_path(path).read_bytes(), feed_public_key()
            )
            out["verify_header"] = time.perf_counter() - start
            for _ in parse(stream, header, max_changes=10**7):
                pass
            out[name] = time.perf_counter() - start
    start = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    out["sha256_only"] = time.perf_counter() - start
    return out


def child(mode: str, path: str, installations: int, cards: int) -> None:
    """Run one ingest in this (child) process and print its figures as JSON."""
    django_setup()
    from revocation import services
    from revocation.models import RevocationEntry

    if mode == "parse":
        print(json.dumps({"mode": mode, **parse_only(Path(path))}))
        return
    reset(installations, cards)
    idle_mb = peak_rss_mb()
    from django.db import connection

    with connection.cursor() as cursor:  # the connection apply_feed will use (same thread)
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    pg_cpu_before, py_cpu_before = backend_cpu(backend), time.process_time()
    timings: dict[str, float] = {}
    if mode == "legacy":
        import revocation_legacy as legacy

        services._stage_and_apply = legacy.stage_and_apply  # type: ignore[assignment]
    else:
        current = services._stage_and_apply
        services._stage_and_apply = lambda stream, header, feed: current(stream, header, feed, timings)  # type: ignore[assignment]
    start = time.perf_counter()
    if mode in ("set", "legacy"):
        feed = services.apply_feed(path=Path(path))
        assert feed.state == "applied", (feed.reason_code, feed.reason)
        changes = feed.count
    else:
        changes = orm_ingest(Path(path))
    seconds = time.perf_counter() - start
    py_cpu, pg_cpu = time.process_time() - py_cpu_before, backend_cpu(backend) - pg_cpu_before
    peak_mb = peak_rss_mb()
    print(
        json.dumps(
            {
                "mode": mode,
                "py_cpu": py_cpu,
                "pg_cpu": pg_cpu,
                "changes": changes,
                "seconds": seconds,
                "peak_mb": peak_mb,
                "idle_mb": idle_mb,
                "timings": timings,
                "entries": RevocationEntry.objects.count(),
            }
        )
    )


def run_child(mode: str, path: Path, installations: int, cards: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path), str(installations), str(cards)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--changes", type=int, default=1_000_000)
    parser.add_argument("--orm-sample", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=2, help="runs of current and previous, alternated")
    parser.add_argument("--child", nargs=4, metavar=("MODE", "PATH", "INSTALLATIONS", "CARDS"))
    args = parser.parse_args()
    if args.child:
        mode, path, installations, cards = args.child
        child(mode, path, int(installations), int(cards))
        return
    sys.path.insert(0, str(ROOT))
    from revocation import feedfile

    ensure_database()
    cards = int(args.changes * 0.8)
    installations = max(1, args.changes // 5)
    with tempfile.TemporaryDirectory(prefix="revbench-") as tmp:
        t0 = time.perf_counter()
        big = feedfile.write_feed(
            Path(tmp) / "big",
            number=1,
            previous=None,
            changes=feedfile.random_changes(args.changes, cards=cards, seed=1),
            private_key=feedfile.demo_private_key(),
        )
        write_s = time.perf_counter() - t0
        sample_cards = int(args.orm_sample * 0.8)
        small = feedfile.write_feed(
            Path(tmp) / "small",
            number=1,
            previous=None,
            changes=feedfile.random_changes(args.orm_sample, cards=sample_cards, seed=2),
            private_key=feedfile.demo_private_key(),
        )
        sample_inst = max(1, args.orm_sample // 5)
        load_before = os.getloadavg()
        parse = run_child("parse", big, installations, cards)
        # Current and previous code alternately, so a change in the machine's load hits both.
        runs: dict[str, list[dict]] = {"set": [], "legacy": []}
        for _ in range(args.rounds):
            for mode in ("set", "legacy"):
                runs[mode].append(run_child(mode, big, installations, cards))
        set_small = run_child("set", small, sample_inst, sample_cards)
        orm_small = run_child("orm", small, sample_inst, sample_cards)
        size_mb = big.stat().st_size / 1e6
        load_after = os.getloadavg()
    set_big = min(runs["set"], key=lambda r: r["seconds"])
    legacy_big = min(runs["legacy"], key=lambda r: r["seconds"])
    orm_extrapolated = orm_small["seconds"] * args.changes / args.orm_sample
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f}"
    )
    print(f"feed writer: {args.changes:,} changes ({size_mb:.0f} MB) in {write_s:.1f} s")
    print(
        f"validation alone (no database): current {parse['parse']:.2f} s, previous "
        f"{parse['parse_legacy']:.2f} s ({parse['parse_legacy'] / parse['parse']:.1f}x); of which "
        f"signature {parse['verify_header'] * 1000:.1f} ms, "
        f"SHA-256 of the body alone {parse['sha256_only']:.2f} s"
    )
    for name, mode in (("current", "set"), ("previous", "legacy")):
        times = ", ".join(f"{r['seconds']:.1f}" for r in runs[mode])
        best = min(runs[mode], key=lambda r: r["seconds"])
        print(
            f"set-based ingest ({name}), {best['changes']:,} changes, {installations:,} installations: "
            f"best {best['seconds']:.1f} s of [{times}] (CPU: Python {best['py_cpu']:.1f} s, "
            f"PostgreSQL backend {best['pg_cpu']:.1f} s), peak RSS {best['peak_mb']:.0f} MB "
            f"(idle {best['idle_mb']:.0f} MB), {best['entries']:,} entries"
        )
    phases = set_big["timings"]
    rest = set_big["seconds"] - sum(phases.values())
    print(
        "current, per phase (wall s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in phases.items())
        + f"; rest (file SHA-256, records, commit with the deferred foreign-key checks) {rest:.2f}"
    )
    cpu = {k: r["py_cpu"] + r["pg_cpu"] for k, r in (("set", set_big), ("legacy", legacy_big))}
    print(
        f"previous / current: wall {legacy_big['seconds'] / set_big['seconds']:.2f}x, "
        f"CPU (Python + PostgreSQL) {cpu['legacy'] / cpu['set']:.2f}x"
    )
    print(
        f"sample of {args.orm_sample:,}: set-based {set_small['seconds']:.2f} s "
        f"(peak {set_small['peak_mb']:.0f} MB); per-row ORM {orm_small['seconds']:.2f} s "
        f"(peak {orm_small['peak_mb']:.0f} MB)"
    )
    print(
        f"per-row ORM extrapolated to {args.changes:,}: {orm_extrapolated:.0f} s "
        f"(ratio ORM/set-based: {orm_extrapolated / set_big['seconds']:.1f}x)"
    )


if __name__ == "__main__":
    main()
