"""Benchmark: card AP loads at scale through the real HTTP relay, in the production shape.

    DATABASE_URL=postgres://.../<your db> REDIS_URL=redis://127.0.0.1:6379/<n> \\
        .venv/bin/python bench/loading_scale.py [--terminals 100] [--workers 1] [--seconds 30]

Shape (all on 127.0.0.1):
- a uvicorn server (``--workers`` processes) serving config.asgi (bench/_bench_asgi.py adds
  in-memory counters, nothing else), on PostgreSQL and Redis (the relay's wake-ups, the cache);
- one Celery worker process (``celery -A config worker``, solo pool), sent the relay's
  supervision task every ``--supervise-seconds`` as beat would (no task is on a job's path);
- N terminal agents: the real cardap-agent code (bench/_bench_agents.py, one process), each with
  an in-process virtual card behind its transmit, long-polling /relay/v1/poll and POSTing the
  response scripts;
- the operator side in this process: per terminal, read → load a standard type C card AP →
  read → delete, in a loop, through loading.services (what the operator's views call), the jobs
  started by ``--operators`` threads (8: operators work at the same time, and one thread alone
  is a serial point of ~50 ms per job start); it learns that jobs ended with one query for all
  terminals every 20 ms (the screens poll too).

Measured over the run (from the first job to the last one ending):
- loads per second (load jobs succeeded / wall), job time of each load and delete job from the
  database (``finished_at - created_at``: queued, picked up by the agent's poll, run, ended);
- CPU from /proc (utime + stime): the uvicorn processes, the Celery worker, the agents' process,
  this process (the operator side: in production it is the web server too), PostgreSQL (the
  backends of the benchmark's database, sampled, plus the server's reaped children: an upper
  bound, other databases on it included) and Redis (the whole server: shared);
- queries and the audit chain's serial section per card operation, counted in the servers;
- at the end: no job failed, every card's instances agree with the database's installations
  for its CIN, and ``manage.py verify_audit`` passes.

A throw-away database ``<DATABASE_URL's db>_bench_scale`` is created and dropped. Bounded by
``--seconds`` (no job starts after it) and ``--max-loads``. ``--profile DIR``: cProfile in the
uvicorn workers (every request's synchronous part, the poll's database looks) and around the
operator side's job starts: DIR/servers.prof, DIR/operator.prof and a summary printed (profiling
slows the run: take the figures from a run without it).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import itertools
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("CARDAP_DEMO", "1")
os.environ["SERVICE_OPEN_TIME"], os.environ["SERVICE_CLOSE_TIME"] = "00:00", "23:59"
os.environ["SERVICE_CLOSED_PERIOD"] = "02-28..02-28"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["LOG_LEVEL"] = "WARNING"

from bench_db import throwaway_postgres  # noqa: E402

BASE_URL = os.environ.get("DATABASE_URL", "")
os.environ["DATABASE_URL"] = throwaway_postgres("bench_scale")

import django  # noqa: E402

django.setup()

from _relay_world import free_port  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


# --- process accounting --------------------------------------------------------------------------


def stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu(pid: int, *, children: bool = False) -> float:
    """utime + stime of a process (with ``children``: plus its reaped children's), seconds."""
    try:
        f = stat(pid)
    except OSError:
        return 0.0
    return sum(int(x) for x in f[11 : 15 if children else 13]) / TICKS


def descendants(pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                parents[int(p.name)] = int(stat(int(p.name))[1])
    out, todo = [], [pid]
    while todo:
        cur = todo.pop()
        kids = [c for c, pp in parents.items() if pp == cur]
        out += kids
        todo += kids
    return out


def pids_named(name: str) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                if (p / "comm").read_text().strip() == name:
                    out.append(int(p.name))
    return out


class PostgresCPU:
    """CPU of the PostgreSQL server: its processes now (the postmaster's reaped children too) and,
    sampled, the backends of the benchmark's database."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}

    def whole(self) -> float:
        pids = pids_named("postgres")
        if not pids:
            return 0.0
        postmaster = min(pids)  # started first
        return sum(cpu(p) for p in pids) + cpu(postmaster, children=True) - cpu(postmaster)

    def sample(self) -> None:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            for (pid,) in cur.fetchall():
                c = cpu(pid)
                self.first.setdefault(pid, c)
                self.last[pid] = c

    def ours(self) -> float:
        return sum(self.last[p] - self.first[p] for p in self.last)


# --- the parts ------------------------------------------------------------------------------------


def world(n: int):  # type: ignore[no-untyped-def]
    from dataclasses import make_dataclass

    from cardap.models import Provider
    from operators.models import Operator, Terminal
    from operators.services import issue_terminal_credential
    from tests.conftest import make_operator
    from tests.loading.jobs_support import setup

    city = Provider.objects.create(
        name="ベンチ市", kind="municipality", local_gov_code="131016", status="live"
    )
    R = Operator.Role
    W = make_dataclass("W", ["city", "city_admin", "city_operator", "jlis"])
    w = W(
        city,
        make_operator("s_admin", R.PROVIDER_ADMIN, city),
        make_operator("s_op", R.OPERATOR, city),
        make_operator("s_jlis", R.JLIS_STAFF, None),
    )
    s = setup(w)
    terminals = [s.terminal] + [
        Terminal.objects.create(provider=city, name=f"窓口{i}", location="本庁舎", administrator=w.city_admin)
        for i in range(2, n + 1)
    ]
    creds = [(t.pk, issue_terminal_credential(actor=w.city_admin, terminal=t)) for t in terminals]
    return w, s.c, terminals, creds


def server_env(stats_dir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BENCH_STATS_DIR": str(stats_dir),
        "RELAY_POLL_SECONDS": "25",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    return env


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("the server exited")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("the server did not start")


def stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def server_stats(pids: list[int], stats_dir: Path) -> dict[str, float]:
    for f in stats_dir.glob("*.json"):
        f.unlink()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)
    end = time.monotonic() + 10
    while time.monotonic() < end and len(list(stats_dir.glob("*.json"))) < len(pids):
        time.sleep(0.05)
    total: dict[str, float] = {}
    for f in stats_dir.glob("*.json"):
        for k, v in json.loads(f.read_text()).items():
            total[k] = total.get(k, 0) + v
    return total


# --- the operator side ----------------------------------------------------------------------------


PHASES = ("read", "load", "read", "delete")


def run(args: argparse.Namespace) -> None:  # noqa: C901, PLR0915
    from cardap.models import CardAPInstallation
    from loading import services, tasks
    from loading.models import Job
    from operators.models import AuditEntry

    if connection.vendor != "postgresql" or not os.environ.get("REDIS_URL"):
        raise SystemExit("runs on PostgreSQL and Redis: set DATABASE_URL=postgres://... and REDIS_URL")
    call_command("migrate", verbosity=0)
    w, ap, terminals, creds = world(args.terminals)
    by_id = {t.pk: t for t in terminals}
    operator = w.city_operator
    stats_dir = Path(tempfile.mkdtemp(prefix="cardap-bench-stats-"))
    env = server_env(stats_dir)
    if args.profile:
        env["BENCH_PROFILE"] = "1"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = Path(tempfile.mkdtemp(prefix="cardap-bench-logs-"))
    server = celery = agents = None
    try:
        server = subprocess.Popen(  # noqa: S603
            [
                sys.executable, "-m", "uvicorn", "bench._bench_asgi:application",
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers),
                "--lifespan", "off", "--no-access-log", "--log-level", "warning", "--backlog", "4096",
            ],
            cwd=ROOT, env=env, start_new_session=True,
            stdout=(logs / "uvicorn.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        celery = subprocess.Popen(  # noqa: S603
            [
                sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo",
                "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
            ],
            cwd=ROOT, env=env, start_new_session=True,
            stdout=(logs / "celery.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        wait_http(url, server)
        time.sleep(3.0 if args.workers > 1 else 0.2)  # every worker up
        # With --workers > 1: the supervisor (counted: it is part of the server) and its spawned
        # workers (not multiprocessing's resource tracker).
        workers = [server.pid] + [
            p
            for p in (descendants(server.pid) if args.workers > 1 else [])
            if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()
        ]
        if len(workers) != args.workers + (args.workers > 1):
            raise RuntimeError(f"found the uvicorn processes {workers}, not {args.workers} workers")
        agents = subprocess.Popen(  # noqa: S603
            [sys.executable, str(ROOT / "bench" / "_bench_agents.py")],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=(logs / "agents.log").open("wb"), start_new_session=True,
        )  # fmt: skip
        assert agents.stdin is not None and agents.stdout is not None
        agents.stdin.write(json.dumps({"server": url, "terminals": creds}).encode())
        agents.stdin.close()
        if agents.stdout.readline().strip() != b"ready":
            raise RuntimeError("the agents did not start: " + (logs / "agents.log").read_text()[-2000:])
        # Every agent's first poll is in and waiting.
        from loading.models import TerminalPresence

        end = time.monotonic() + 60
        while TerminalPresence.objects.count() < len(terminals) and time.monotonic() < end:
            time.sleep(0.2)
        time.sleep(0.5)

        pg = PostgresCPU()
        # What the PostgreSQL server spends without us (other databases on it), for 3 s.
        b0, bt = pg.whole(), time.perf_counter()
        time.sleep(3)
        pg_baseline = (pg.whole() - b0) / (time.perf_counter() - bt)
        procs = {
            "uvicorn": workers,
            "celery": [celery.pid],
            "agents": [agents.pid],
            "operator side": [os.getpid()],
        }
        cpu0 = {k: sum(cpu(p) for p in v) for k, v in procs.items()}
        redis0 = sum(cpu(p) for p in pids_named("redis-server"))
        pg_whole0 = pg.whole()
        serving = workers if args.workers == 1 else [p for p in workers if p != server.pid]
        stats0 = server_stats(serving, stats_dir)
        # The operator side's statements and audit appends, counted as in the servers.
        import _bench_asgi
        from django.db.backends.signals import connection_created

        connection_created.connect(_bench_asgi._install, weak=False)
        connection.ensure_connection()
        _bench_asgi._install(None, connection)
        ours0 = dict(_bench_asgi._stats)

        # The loop: each terminal goes read → load → read → delete → read → ...; the jobs are
        # started by --operators threads (operators at their screens work at the same time).
        phase = dict.fromkeys(by_id, 0)
        active: dict[Any, int] = {}  # job id -> terminal id
        starting: dict[Future[Any], int] = {}  # job being started -> terminal id
        last_read: dict[int, Job] = {}
        errors: list[str] = []
        counter = itertools.count()
        loads = deletes = 0
        t0 = time.perf_counter()
        deadline = time.monotonic() + args.seconds
        next_supervise = time.monotonic() + args.supervise_seconds
        next_sample = 0.0

        def start_job(tid: int) -> Any:
            terminal, kind = by_id[tid], PHASES[phase[tid] % 4]
            key = f"b{next(counter)}"
            if kind == "read":
                job = services.start_read(operator=operator, terminal=terminal, request_key=key)
            elif kind == "load":
                job = services.start_load(
                    operator=operator, terminal=terminal, read_job=last_read[tid],
                    items=[services.LoadItem(ap)], consent=True, request_key=key,
                )  # fmt: skip
            else:
                job = services.start_delete(
                    operator=operator, terminal=terminal, read_job=last_read[tid],
                    card_aps=[ap], consent=True, request_key=key,
                )  # fmt: skip
            return job.pk

        if args.profile:
            start_job = _bench_asgi._profiled(start_job)
        pool = ThreadPoolExecutor(args.operators, thread_name_prefix="operator")

        def start(tid: int) -> None:
            starting[pool.submit(start_job, tid)] = tid

        for tid in by_id:
            start(tid)
        while active or starting:
            now = time.monotonic()
            if now >= next_sample:
                pg.sample()
                next_sample = now + 0.5
            if now >= next_supervise:
                tasks.supervise_conversations.delay()
                next_supervise = now + args.supervise_seconds
            for future in [f for f in starting if f.done()]:
                tid = starting.pop(future)
                try:
                    active[future.result()] = tid
                except Exception as exc:  # noqa: BLE001 - a refusal: reported, the terminal stops
                    errors.append(f"start {PHASES[phase[tid] % 4]}: {type(exc).__name__} {exc}"[:120])
            ended = list(Job.objects.filter(pk__in=list(active)).exclude(state__in=Job.ACTIVE_STATES))
            for job in ended:
                tid = active.pop(job.pk)
                kind = PHASES[phase[tid] % 4]
                if job.state != Job.State.SUCCEEDED:
                    errors.append(f"{kind} {job.state} {job.error_code} {job.error_message[:80]}")
                    continue  # this terminal stops
                if kind == "read":
                    last_read[tid] = job
                elif kind == "load":
                    loads += 1
                else:
                    deletes += 1
                phase[tid] += 1
                if time.monotonic() < deadline and loads < args.max_loads:
                    start(tid)
            if not ended:
                time.sleep(0.02)
            if time.monotonic() > deadline + 120:
                errors.append(f"{len(active)} jobs still active 120 s after the end")
                break
        wall = time.perf_counter() - t0
        pool.submit(connections.close_all)
        pool.shutdown(wait=True)
        if args.profile:
            save_profiles(Path(args.profile), serving, stats_dir, _bench_asgi._profiles)
        pg.sample()
        used = {k: sum(cpu(p) for p in v) - cpu0[k] for k, v in procs.items()}
        redis_cpu = sum(cpu(p) for p in pids_named("redis-server")) - redis0
        pg_whole = pg.whole() - pg_whole0
        stats1 = server_stats(serving, stats_dir)
        st = {k: stats1.get(k, 0) - stats0.get(k, 0) for k in stats1}
        connection_created.disconnect(_bench_asgi._install)
        op = {k: v - ours0[k] for k, v in _bench_asgi._stats.items()}
        load_avg = os.getloadavg()

        # Stop the agents; their cards against the database.
        agents.send_signal(signal.SIGTERM)
        out = agents.stdout.read()
        agents.wait(60)
        cards = json.loads(out.decode().strip().splitlines()[-1])["cards"]
        disagree = []
        for tid, card in cards.items():
            live = set(
                CardAPInstallation.objects.filter(card_id=card["cin"])
                .exclude(state=CardAPInstallation.State.DELETED)
                .values_list("card_ap__aid", flat=True)
            )
            on_card = {aid for aid, lc in card["instances"].items() if lc == "0F"}
            if live != on_card or len(card["instances"]) != len(on_card):
                disagree.append(f"terminal {tid}: card {sorted(on_card)} database {sorted(live)}")
        audit = subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", "verify_audit"], cwd=ROOT, env=env, capture_output=True, text=True
        )
        times = {
            kind: sorted(
                (j.finished_at - j.created_at).total_seconds()
                for j in Job.objects.filter(kind=kind, state=Job.State.SUCCEEDED)
            )
            for kind in (Job.Kind.LOAD, Job.Kind.DELETE, Job.Kind.READ)
        }
        entries = AuditEntry.objects.count()
        first = Job.objects.order_by("created_at").values_list("created_at", flat=True).first()
        timeline: dict[int, list[int]] = {}
        for created, finished in Job.objects.values_list("created_at", "finished_at"):
            timeline.setdefault(int((created - first).total_seconds() // 5), [0, 0])[0] += 1
            if finished is not None:
                timeline.setdefault(int((finished - first).total_seconds() // 5), [0, 0])[1] += 1
    finally:
        if agents is not None and agents.poll() is None:
            stop(agents, signal.SIGKILL)
        stop(celery)
        stop(server)

    ops = max(loads + deletes, 1)
    jobs = sum(len(v) for v in times.values())

    def pct(xs: list[float], q: float) -> float:
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")

    print(
        f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; terminals {args.terminals}; "
        f"uvicorn workers {args.workers}; "
        f"wall {wall:.1f} s; load average {load_avg[0]:.2f} {load_avg[1]:.2f} {load_avg[2]:.2f}"
    )
    print(
        f"loads {loads}, deletes {deletes}, jobs {jobs} (reads included); errors {len(errors)} {errors[:3]}"
    )
    print(f"loads/s {loads / wall:.1f}; card operations (load or delete)/s {(loads + deletes) / wall:.1f}")
    for kind, xs in times.items():
        if xs:
            print(
                f"  {kind} job time: p50 {statistics.median(xs) * 1000:.0f} ms, p95 {pct(xs, 0.95):.0f} ms, "
                f"max {xs[-1] * 1000:.0f} ms"
            )
    print("CPU per card operation (load or delete, with its read), ms, from /proc:")
    for k, v in used.items():
        print(f"  {k:14s} {v / ops * 1000:7.1f}   ({v:.1f} s over the run)")
    print(f"  {'PostgreSQL':14s} {pg.ours() / ops * 1000:7.1f}   (backends of the bench database, sampled)")
    print(
        f"  {'':14s} {pg_whole / ops * 1000:7.1f}   (the whole PostgreSQL server, others' work included; "
        f"less its rate before the run: {(pg_whole - pg_baseline * wall) / ops * 1000:.1f})"
    )
    print(f"  {'Redis':14s} {redis_cpu / ops * 1000:7.1f}   (the whole Redis server, shared)")
    print(
        f"server queries per job {st.get('queries', 0) / max(jobs, 1):.1f} (per card operation "
        f"{st.get('queries', 0) / ops:.1f}); "
        f"SQL wall per card operation {st.get('sql_wall', 0) / ops * 1000:.1f} ms"
    )
    print(
        f"audit chain per card operation: {st.get('audit_records', 0) / ops:.1f} appends in the servers, "
        f"{st.get('audit_record_wall', 0) / ops * 1000:.1f} ms inside record(); lock wait "
        f"{st.get('audit_lock_wait', 0) / ops * 1000:.1f} ms, lock held (serial) "
        f"{st.get('audit_lock_hold', 0) / ops * 1000:.1f} ms"
        f" => at most {ops / max(st.get('audit_lock_hold', 0), 1e-9):.0f} card operations/s through the chain"
    )
    print(
        f"operator side: {op['queries'] / max(jobs, 1):.1f} queries per job started; audit lock held "
        f"{op['audit_lock_hold'] / ops * 1000:.1f} ms, waited {op['audit_lock_wait'] / ops * 1000:.1f} ms "
        f"per card operation ({op['audit_locks'] / ops:.1f} appends)"
    )
    hold = st.get("audit_lock_hold", 0) + op["audit_lock_hold"]
    print(
        f"audit chain in all: lock held {hold / ops * 1000:.1f} ms per card operation => at most "
        f"{ops / max(hold, 1e-9) / 2:.0f} loads/s (with their deletes) through the chain"
    )
    print(f"audit entries in all {entries}")
    print(f"cards disagreeing with the database: {len(disagree)} {disagree[:2]}")
    print(f"verify_audit: exit {audit.returncode}: {(audit.stdout + audit.stderr).strip()[:200]}")
    print("jobs started/ended per 5 s: " + " ".join(f"{a}/{b}" for _, (a, b) in sorted(timeline.items())))
    if args.profile:
        summarise(Path(args.profile) / "servers.prof")
        summarise(Path(args.profile) / "operator.prof", top=15)
    print(f"logs: {logs}")


def save_profiles(out: Path, pids: list[int], stats_dir: Path, operator: list[cProfile.Profile]) -> None:
    """The servers' merged cProfile (bench/_bench_asgi.py) and the operator side's, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR2)
    end = time.monotonic() + 30
    while time.monotonic() < end and len(list(stats_dir.glob("*.prof"))) < len(pids):
        time.sleep(0.1)
    time.sleep(0.5)
    merged = None
    for f in stats_dir.glob("*.prof"):
        merged = pstats.Stats(str(f)) if merged is None else merged.add(str(f))
    if merged is not None:
        merged.dump_stats(out / "servers.prof")
    if operator:
        ours = pstats.Stats(operator[0])
        for pr in operator[1:]:
            ours.add(pr)
        ours.dump_stats(out / "operator.prof")


def summarise(path: Path, top: int = 30) -> None:
    """The hottest functions of a profile, by own time and with what they call."""
    if not path.exists():
        print(f"no profile {path}")
        return
    stats = pstats.Stats(str(path))
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"profile {path}: {total:.1f} s of profiled time")
    rows = stats.stats  # type: ignore[attr-defined]
    for key in ("cumulative", "own"):
        i = 3 if key == "cumulative" else 2
        print(f"  by {key} time:")
        for (file, line, name), v in sorted(rows.items(), key=lambda kv: -kv[1][i])[:top]:
            short = file.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            print(f"    {v[i] / total * 100:5.1f} %  {v[1]:7d} calls  {short}:{line} {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--terminals", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--max-loads", type=int, default=5000)
    parser.add_argument("--supervise-seconds", type=float, default=5.0)
    parser.add_argument("--operators", type=int, default=8, help="threads starting jobs")
    parser.add_argument("--profile", default="")
    run(parser.parse_args())


if __name__ == "__main__":
    main()
