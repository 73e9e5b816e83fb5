"""The real ASGI application (config.asgi) with the loading benchmark's counters, for the uvicorn
workers started by bench/loading_scale.py. Nothing in the request path changes; each worker
counts, in memory:

- SQL statements executed and their wall time (a Django execute wrapper on every connection);
- the audit chain's serial section: the wait for ``pg_advisory_xact_lock`` (operators.audit) and
  how long the lock is then held (from acquiring it to the commit that releases it);
- time inside ``operators.audit.record`` (wall).

``SIGUSR1`` makes a worker write its counters to ``$BENCH_STATS_DIR/<pid>.json``. With
``BENCH_PROFILE=1`` every request's synchronous part (middleware and view) and the poll's database
looks run under cProfile (one profiler per thread); ``SIGUSR2`` writes the merged profile to
``$BENCH_STATS_DIR/<pid>.prof``."""

from __future__ import annotations

import asyncio
import cProfile
import functools
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from config.asgi import application

__all__ = ["application"]

_stats: dict[str, float] = {
    "queries": 0,
    "sql_wall": 0.0,
    "audit_lock_wait": 0.0,
    "audit_lock_hold": 0.0,
    "audit_locks": 0,
    "audit_records": 0,
    "audit_record_wall": 0.0,
}


def _count(execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
    t0 = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        t1 = time.perf_counter()
        _stats["queries"] += 1
        _stats["sql_wall"] += t1 - t0
        if "pg_advisory_xact_lock" in sql:
            _stats["audit_lock_wait"] += t1 - t0
            _stats["audit_locks"] += 1

            def released() -> None:
                _stats["audit_lock_hold"] += time.perf_counter() - t1

            context["connection"].on_commit(released)


def _install(sender: Any, connection: Any, **kwargs: Any) -> None:
    if _count not in connection.execute_wrappers:
        connection.execute_wrappers.append(_count)


def _wrap_record() -> None:
    import sys

    from django.urls import get_resolver

    from operators import audit

    get_resolver().url_patterns  # noqa: B018 - imports every view module now
    original = audit.record

    def record(**kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return original(**kwargs)
        finally:
            _stats["audit_records"] += 1
            _stats["audit_record_wall"] += time.perf_counter() - t0

    for module in list(sys.modules.values()):
        if getattr(module, "record", None) is original:
            module.record = record  # type: ignore[attr-defined]


_profiles: list[Any] = []
_local = threading.local()


def _profiled(fn: Any) -> Any:
    """Run ``fn`` under this thread's cProfile profiler (BENCH_PROFILE=1)."""

    @functools.wraps(fn)  # keeps csrf_exempt and the like
    def inner(*args: Any, **kwargs: Any) -> Any:
        pr = getattr(_local, "profile", None)
        if pr is None:
            pr = _local.profile = cProfile.Profile(time.thread_time)
            _profiles.append(pr)
        if getattr(_local, "depth", 0):
            return fn(*args, **kwargs)
        _local.depth = 1
        pr.enable()
        try:
            return fn(*args, **kwargs)
        finally:
            pr.disable()
            _local.depth = 0

    return inner


def _install_profiles() -> None:
    from django.core.handlers.base import BaseHandler
    from django.urls import URLPattern, URLResolver, get_resolver

    from loading import relay

    BaseHandler._get_response = _profiled(BaseHandler._get_response)  # type: ignore[method-assign]

    def walk(patterns: list[Any]) -> None:  # sync views (the relay's step) under ASGI
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns)
            elif isinstance(p, URLPattern) and not asyncio.iscoroutinefunction(p.callback):
                p.callback = _profiled(p.callback)

    walk(get_resolver().url_patterns)
    relay._look = _profiled(relay._look)  # type: ignore[assignment]
    relay._authenticate = _profiled(relay._authenticate)  # type: ignore[assignment]


def _dump_profile(signum: int, frame: Any) -> None:
    import pstats

    stats = None
    for pr in _profiles:
        pr.create_stats()
        stats = pstats.Stats(pr) if stats is None else stats.add(pr)
    if stats is not None:
        stats.dump_stats(Path(os.environ["BENCH_STATS_DIR"]) / f"{os.getpid()}.prof")


def _dump(signum: int, frame: Any) -> None:
    out = Path(os.environ["BENCH_STATS_DIR"]) / f"{os.getpid()}.json"
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(_stats))
    tmp.replace(out)


if os.environ.get("BENCH_STATS_DIR"):
    from django.db.backends.signals import connection_created

    connection_created.connect(_install, weak=False)
    _wrap_record()
    signal.signal(signal.SIGUSR1, _dump)
    if os.environ.get("BENCH_PROFILE"):
        _install_profiles()
        signal.signal(signal.SIGUSR2, _dump_profile)
