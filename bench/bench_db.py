"""Throw-away PostgreSQL databases for the benchmarks: named after the database in DATABASE_URL
(``<name>_<suffix>``, so each developer's benchmarks stay in their own namespace), created empty
when asked for and dropped when the process exits."""

from __future__ import annotations

import atexit
import os
from urllib.parse import urlsplit, urlunsplit

import psycopg


def _admin(url: str):  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    conn = psycopg.connect(urlunsplit(parts._replace(path="/postgres")))
    conn.autocommit = True
    return conn


def throwaway_postgres(suffix: str, *, drop_at_exit: bool = True) -> str:
    """The URL of a fresh empty database ``<DATABASE_URL's db>_<suffix>``."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres"):
        raise SystemExit("--postgres needs DATABASE_URL=postgres://.../<your database>")
    parts = urlsplit(base)
    name = f"{parts.path.lstrip('/')}_{suffix}"
    conn = _admin(base)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    if drop_at_exit:
        atexit.register(drop, base, name)
    return urlunsplit(parts._replace(path=f"/{name}"))


def drop(base: str, name: str) -> None:
    from django.db import connections

    connections.close_all()
    conn = _admin(base)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()
