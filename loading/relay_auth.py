"""Who is calling the relay: the one place that turns an agent's ``Authorization`` header into
its Terminal (``Authorization: Terminal <credential>``, the terminal's own credential, checked on
every request so a revoked or rotated credential stops at once)."""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection
from django.http import HttpRequest

from cardap.apikeys import _columns, _instance
from cardap.models import Provider
from operators import tokens
from operators.models import Terminal
from operators.services import TOKEN_PREFIX

KEYWORD = "Terminal"
MAX_CREDENTIAL = 200


def credential_from(request: HttpRequest) -> str:
    """The credential in the request's Authorization header ('' when there is none)."""
    parts = request.headers.get("Authorization", "").split()
    if len(parts) != 2 or parts[0] != KEYWORD:
        return ""
    return parts[1]


def credential_id(credential: str) -> str:
    """The credential's public id (the part after the prefix), for the audit log; never the
    secret part."""
    if not credential.startswith(TOKEN_PREFIX):
        return ""
    return credential[len(TOKEN_PREFIX) :].partition("_")[0][:16]


@functools.cache
def _terminal_lookup_sql() -> tuple[str, list[Any], list[Any]]:
    terminal_fields, provider_fields = _columns(Terminal), _columns(Provider)
    columns = [f"t.{f.column}" for f in terminal_fields] + [f"p.{f.column}" for f in provider_fields]
    sql = (
        f"SELECT {', '.join(columns)} FROM {Terminal._meta.db_table} t "  # noqa: S608 (names only)
        f"JOIN {Provider._meta.db_table} p ON p.id = t.provider_id "
        "WHERE t.credential_hash = %s AND t.credential_revoked_at IS NULL AND t.is_active"
    )
    return sql, terminal_fields, provider_fields


def terminal_for(credential: str) -> Terminal | None:
    """The active terminal holding ``credential`` (its provider with it), or None: the same rule
    as ``operators.services.authenticate_terminal`` (digest lookup, credential unrevoked, terminal
    active, provider live), in one plain statement — it runs on every poll, re-look and POST, and
    the ORM's compile of it cost more than running it."""
    if not credential or not credential.startswith(TOKEN_PREFIX) or len(credential) > MAX_CREDENTIAL:
        return None
    sql, terminal_fields, provider_fields = _terminal_lookup_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [tokens.digest(credential)])
        row = cursor.fetchone()
    if row is None:
        return None
    terminal: Terminal = _instance(Terminal, terminal_fields, row[: len(terminal_fields)])
    provider: Provider = _instance(Provider, provider_fields, row[len(terminal_fields) :])
    if not provider.is_live:
        return None
    terminal.provider = provider
    return terminal
