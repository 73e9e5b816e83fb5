"""Benchmark: card AP loads at scale. N simulated terminals, each with its own in-process
virtual card, each reading the card, loading a standard type C card AP, reading again and
deleting it, in a loop; every step through the loading services and the conversation engine on
PostgreSQL (and Redis as the cache when REDIS_URL is set).

    DATABASE_URL=postgres://.../<your db> REDIS_URL=redis://127.0.0.1:6379/<n> \\
        .venv/bin/python bench/loading_scale.py [--terminals 100] [--processes 2] [--seconds 30]

Shape: ``--processes`` server processes (forked after the set-up, each its own database
connection); each serves its share of the terminals interleaved one engine call at a time, so a
terminal waits for the others as it would for a busy server. The HTTP relay and cardap-agent are
not in this tree yet: the terminals call loading.services / loading.engine directly, exactly what
the relay's views will call. Celery is not on the load path (no task is enqueued by a job).

Measured: loads per second (load jobs finished / wall time of the run), job time of each load
(start_load to its end, wall, including the wait for other terminals), server CPU per load from
/proc (user + system time of the server processes over the run, divided by loads and deletes),
where the CPU goes (services, engine calls, audit appends; PostgreSQL's own CPU reported beside it
from the backends' /proc entries), and the audit log's hash chain: time inside
``operators.audit.record`` per load. At the end: every job succeeded, each card's content agrees
with the database, and ``verify_chain()`` finds the audit chain intact.

A throw-away database ``<DATABASE_URL's db>_bench_scale`` is created and dropped. Bounded by
``--seconds`` (the loop stops starting new jobs) and ``--max-loads``.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Generator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("CARDAP_DEMO", "1")
os.environ["SERVICE_OPEN_TIME"], os.environ["SERVICE_CLOSE_TIME"] = "00:00", "23:59"
os.environ["SERVICE_CLOSED_PERIOD"] = "02-28..02-28"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from bench_db import throwaway_postgres  # noqa: E402

os.environ["DATABASE_URL"] = throwaway_postgres("bench_scale")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (and its waited-for children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICKS


def world():  # type: ignore[no-untyped-def]
    from dataclasses import make_dataclass

    from cardap.models import Provider
    from operators.models import Operator
    from tests.conftest import make_operator

    city = Provider.objects.create(
        name="ベンチ市", kind="municipality", local_gov_code="131016", status="live"
    )
    R = Operator.Role
    W = make_dataclass("W", ["city", "city_admin", "city_operator", "jlis"])
    return W(
        city,
        make_operator("s_admin", R.PROVIDER_ADMIN, city),
        make_operator("s_op", R.OPERATOR, city),
        make_operator("s_jlis", R.JLIS_STAFF, None),
    )


# --- one server process ------------------------------------------------------------------------


class Stopwatch:
    """Wall and CPU time spent inside a wrapped function (per process)."""

    def __init__(self) -> None:
        self.wall = 0.0
        self.cpu = 0.0
        self.calls = 0

    def wrap(self, fn):  # type: ignore[no-untyped-def]
        def inner(*args, **kwargs):  # type: ignore[no-untyped-def]
            t0, c0 = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall += time.perf_counter() - t0
                self.cpu += time.thread_time() - c0
                self.calls += 1

        return inner


def serve(
    index: int, terminal_ids: list[int], ids: dict[str, int], deadline: float, max_loads: int, out
) -> None:  # type: ignore[no-untyped-def]
    connections.close_all()  # a connection of its own, not the parent's
    from cardap.models import CardAP
    from loading import engine, jobs, services
    from loading.models import Job
    from operators import audit
    from operators.models import Operator, Terminal
    from tests.loading.jobs_support import Agent
    from vcard import VirtualCard

    watches = {name: Stopwatch() for name in ("services", "engine", "audit")}
    audit_record = watches["audit"].wrap(audit.record)
    jobs.record = audit_record  # type: ignore[attr-defined]
    services.record = audit_record  # type: ignore[attr-defined]
    for name in ("start_read", "start_load", "start_delete"):
        setattr(services, name, watches["services"].wrap(getattr(services, name)))
    next_script = watches["engine"].wrap(engine.next_script)
    submit = watches["engine"].wrap(engine.submit_responses)

    operator = Operator.objects.get(pk=ids["operator"])
    ap = CardAP.objects.get(pk=ids["card_ap"])
    cards: dict[int, VirtualCard] = {}
    load_times: list[float] = []
    errors: list[str] = []
    counter = iter(range(10**9))
    done = {"loads": 0, "deletes": 0}

    def run(agent: Agent, job: Job) -> Generator[None, None, Job]:
        while True:
            job.refresh_from_db()
            if not job.is_active or job.conversation_id is None:
                return job
            conv = str(job.conversation_id)
            step = next_script(conv)
            yield
            while isinstance(step, engine.Script):
                body = agent.run_script(step.body)
                step = submit(conversation_id=conv, terminal_id=agent.terminal.pk, seq=step.seq, body=body)
                yield

    def terminal_loop(tid: int) -> Generator[None, None, None]:
        terminal = Terminal.objects.get(pk=tid)
        card = cards[tid] = VirtualCard.create()
        agent = Agent(terminal, card)
        while time.monotonic() < deadline and done["loads"] < max_loads:
            for kind in ("load", "delete"):
                read = yield from run(
                    agent,
                    services.start_read(
                        operator=operator, terminal=terminal, request_key=f"{index}.{next(counter)}"
                    ),
                )
                if read.state != Job.State.SUCCEEDED:
                    errors.append(f"read {read.error_code}")
                    return
                t0 = time.perf_counter()
                if kind == "load":
                    job = services.start_load(
                        operator=operator,
                        terminal=terminal,
                        read_job=read,
                        items=[services.LoadItem(ap)],
                        consent=True,
                        request_key=f"{index}.{next(counter)}",
                    )
                else:
                    job = services.start_delete(
                        operator=operator,
                        terminal=terminal,
                        read_job=read,
                        card_aps=[ap],
                        consent=True,
                        request_key=f"{index}.{next(counter)}",
                    )
                yield
                job = yield from run(agent, job)
                if job.state != Job.State.SUCCEEDED:
                    errors.append(f"{kind} {job.error_code} {job.error_message[:80]}")
                    return
                if kind == "load":
                    load_times.append(time.perf_counter() - t0)
                    done["loads"] += 1
                else:
                    done["deletes"] += 1

    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    cpu0, pg0 = cpu_seconds(os.getpid()), _cpu_or_zero(backend)
    t0 = time.perf_counter()
    loops = {tid: terminal_loop(tid) for tid in terminal_ids}
    while loops:  # round robin, one engine call of each terminal in turn
        for tid, loop in list(loops.items()):
            try:
                next(loop)
            except StopIteration:
                del loops[tid]
    wall = time.perf_counter() - t0
    out.put(
        {
            "wall": wall,
            "cpu": cpu_seconds(os.getpid()) - cpu0,
            "pg_cpu": _cpu_or_zero(backend) - pg0,
            "load_times": load_times,
            "errors": errors,
            **done,
            "cards": {tid: card.info()["instances"] for tid, card in cards.items()},
            "cins": {tid: card.info()["cin"] for tid, card in cards.items()},
            "watches": {k: (w.wall, w.cpu, w.calls) for k, w in watches.items()},
        }
    )


def _cpu_or_zero(pid: int) -> float:
    """CPU of this server process's PostgreSQL backend (0 when /proc does not show it)."""
    try:
        return cpu_seconds(pid)
    except OSError:
        return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--terminals", type=int, default=100)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-loads", type=int, default=20000)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("runs on PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    from cardap.models import CardAPInstallation
    from operators.audit import verify_chain
    from operators.models import AuditEntry, Terminal
    from tests.loading.jobs_support import setup

    w = world()
    s = setup(w)
    terminals = [s.terminal.pk] + [
        Terminal.objects.create(
            provider=w.city, name=f"窓口{i}", location="本庁舎", administrator=w.city_admin
        ).pk
        for i in range(2, args.terminals + 1)
    ]
    ids = {"operator": w.city_operator.pk, "card_ap": s.c.pk}
    audit_before = AuditEntry.objects.count()
    connections.close_all()
    ctx = mp.get_context("fork")
    out = ctx.Queue()
    deadline = time.monotonic() + args.seconds
    per = max(1, args.max_loads // args.processes)
    procs = [
        ctx.Process(target=serve, args=(i, terminals[i :: args.processes], ids, deadline, per, out))
        for i in range(args.processes)
    ]
    t0 = time.perf_counter()
    for p in procs:
        p.start()
    results = [out.get(timeout=args.seconds + 600) for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join(timeout=30)
        if p.is_alive():
            p.kill()

    loads = sum(r["loads"] for r in results)
    deletes = sum(r["deletes"] for r in results)
    errors = [e for r in results for e in r["errors"]]
    times = sorted(t for r in results for t in r["load_times"])
    cpu = sum(r["cpu"] for r in results)
    pg_cpu = sum(r["pg_cpu"] for r in results)
    # Agreement: each card's instances and the database's live installations of its CIN.
    disagree = 0
    for r in results:
        for tid, instances in r["cards"].items():
            cin = r["cins"][tid]
            live = set(
                CardAPInstallation.objects.filter(card_id=cin)
                .exclude(state=CardAPInstallation.State.DELETED)
                .values_list("card_ap__aid", flat=True)
            )
            on_card = {aid for aid, lc in instances.items() if lc == "0F"}
            if live != on_card or len(instances) != len(on_card):
                disagree += 1
    problems = verify_chain()
    entries = AuditEntry.objects.count() - audit_before
    ops = loads + deletes

    def w_(k: str) -> tuple[float, float, int]:
        return tuple(sum(x) for x in zip(*(r["watches"][k] for r in results), strict=True))  # type: ignore[return-value]

    print(
        f"terminals: {args.terminals}; server processes: {args.processes}; wall {wall:.1f} s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"loads {loads}, deletes {deletes}, errors {len(errors)} {errors[:3]}")
    print(f"loads/s: {loads / wall:.1f}; card operations (load or delete)/s: {ops / wall:.1f}")
    if times:
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"load job time: p50 {statistics.median(times) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")
    print(
        f"server CPU per card operation: {cpu / max(ops, 1) * 1000:.1f} ms (from /proc, {cpu:.1f} s in all)"
    )
    for k in ("services", "engine", "audit"):
        wall_k, cpu_k, calls = w_(k)
        print(
            f"  {k}: {calls} calls, CPU {cpu_k / max(ops, 1) * 1000:.1f} ms per operation, "
            f"wall {wall_k / max(ops, 1) * 1000:.1f} ms per operation"
        )
    print(f"audit entries: {entries} ({entries / max(ops, 1):.1f} per card operation incl. its reads)")
    print(f"PostgreSQL backends of the servers: CPU {pg_cpu / max(ops, 1) * 1000:.1f} ms per card operation")
    print(
        f"cards disagreeing with the database: {disagree}; "
        f"audit chain problems: {len(problems)} {problems[:2]}"
    )


if __name__ == "__main__":
    main()
