"""Reads of revocation data, always scoped to one provider (R1.5, R6).

A provider sees entries of the card APs it represents, and of card APs it shares or is affiliated
to while that share is in force (today within since..until) and only from the share's start day.
Never the card identifier, never another provider's card APs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import orjson
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cardap.models import CardAP, CardAPInstallation, Provider
from operators import policy
from revocation.models import CardStatus, Feed, ProviderPull, RevocationEntry

VISIBLE_STATUSES = ("suspended", "revoked")


@dataclass(frozen=True)
class Scope:
    """Card APs a provider may see: owned ones entirely, shared ones from a start time."""

    owned: tuple[int, ...]
    shared: tuple[tuple[int, dt.datetime], ...]  # (card AP id, visible from)

    @property
    def empty(self) -> bool:
        return not self.owned and not self.shared

    def signature(self) -> str:
        return repr((self.owned, tuple((ap, at.isoformat()) for ap, at in self.shared)))


def scope_for(provider: Provider | int, *, today: dt.date | None = None) -> Scope:
    """The card APs the provider may see (operators.policy.card_ap_visibility, the plain-SQL
    form of card_aps_visible_to): its own entirely, shared or affiliated ones from the start day
    of the relationship in force. One statement: this runs on every pull, 304s included."""
    provider_id = provider if isinstance(provider, int) else provider.pk
    return _scope(*policy.card_ap_visibility(provider_id, today))


def _scope(owned: list[int], starts: dict[int, dt.date]) -> Scope:
    tz = timezone.get_current_timezone()
    shared = tuple(
        (ap_id, dt.datetime.combine(since, dt.time(), tz)) for ap_id, since in sorted(starts.items())
    )
    return Scope(owned=tuple(owned), shared=shared)


def scope_condition(scope: Scope, *, ap: str, at: str) -> tuple[str, list[Any]]:
    """The scope as an SQL condition on a card AP id column ``ap`` and a time column ``at``: the
    one translation of scope_for's decision, used by every read below (only placeholders and the
    caller's column names are formatted in; every value is a parameter)."""
    conditions: list[str] = []
    params: list[Any] = []
    if scope.owned:
        conditions.append(f"{ap} IN ({', '.join(['%s'] * len(scope.owned))})")
        params.extend(scope.owned)
    for ap_id, start in scope.shared:
        conditions.append(f"({ap} = %s AND {at} >= %s)")
        params.extend([ap_id, connection.ops.adapt_datetimefield_value(start)])
    return "(" + (" OR ".join(conditions) or "1 = 0") + ")", params


def last_applied_feed() -> Feed | None:
    return Feed.objects.filter(state=Feed.State.APPLIED).order_by("-number").first()


_UNREAD: Any = object()


def delta_etag(
    *, provider: Provider, scope: Scope, after: int, limit: int, feed_id: int | None = _UNREAD
) -> str:
    """Changes only when a feed is applied or the provider's scope changes (entries are written
    by feeds only), so a 304 costs one small query beside the scope's: never the entries. The
    last applied feed's id is read here unless given (delta_state reads it with the scope)."""
    if feed_id is _UNREAD:
        with connection.cursor() as cursor:  # plain SQL: this runs on every 304
            cursor.execute(_FEED_MARK_SQL, [Feed.State.APPLIED])
            feed_id = cursor.fetchone()[0]
    raw = f"v2|{provider.pk}|{after}|{limit}|{feed_id}|{scope.signature()}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


_FEED_MARK_SQL = f"SELECT MAX(id) FROM {Feed._meta.db_table} WHERE state = %s"  # noqa: S608 (names only)


def delta_state_sql(today: dt.date | None = None) -> tuple[str, list[Any]]:
    """The delta feed's state for a provider id expression ``{provider}``, as one row: the last
    applied feed's id (the feed's high-water mark) and the provider's visibility
    (operators.policy.card_ap_visibility_sql, the same rule as scope_for) as arrays. Read in the
    API key's statement (cardap.pull_api.ProviderFeedView.provider_state); delta_state turns the
    row into what scope_for and delta_etag give."""
    visible, params = policy.card_ap_visibility_sql("{provider}", today)
    sql = (
        f"SELECT ({_FEED_MARK_SQL}) AS feed_id, "  # noqa: S608 (placeholders only)
        "array_agg(v.card_ap_id) AS card_ap_ids, array_agg(v.since) AS sinces "
        f"FROM ({visible.replace('{', '{{').replace('}', '}}').replace('{{provider}}', '{provider}')}) v"
    )
    return sql, [Feed.State.APPLIED.value, *params]


def delta_state(row: tuple[Any, ...]) -> tuple[int | None, Scope]:
    """(last applied feed's id, scope) from delta_state_sql's row."""
    feed_id, card_ap_ids, sinces = row
    owned, starts = policy.card_ap_visibility_of(list(zip(card_ap_ids or (), sinces or (), strict=True)))
    return feed_id, _scope(owned, starts)


_ENTRY = RevocationEntry._meta.db_table
_CARD_AP = CardAP._meta.db_table


def _entry_rows_sql(scope: Scope, *, after: int, limit: int) -> tuple[str, list[Any]]:
    where, params = scope_condition(scope, ap="e.card_ap_id", at="e.effective_at")
    sql = (
        "SELECT e.id, a.aid, e.user_number, e.status, e.reason, e.effective_at "  # noqa: S608 (placeholders only)
        f"FROM {_ENTRY} e JOIN {_CARD_AP} a ON a.id = e.card_ap_id "
        f"WHERE e.id > %s AND {where} ORDER BY e.id LIMIT %s"
    )
    return sql, [after, *params, limit]


# The wire form of an entry after its "seq": the rest of its JSON object, keys in this order,
# no spaces; to_json quotes and escapes the text and writes the time in the session's zone (set
# to Japan time around the statements that use it). Written once per entry by apply_feed (the
# ``wire`` column), and used here for entries written without it.
ENTRY_WIRE = (
    """'"aid":' || to_json({aid})::text || ',"user_number":' || to_json({user_number})::text"""
    """ || ',"status":' || to_json({status})::text || ',"reason":' || to_json({reason})::text"""
    """ || ',"effective_at":' || to_json({effective_at})::text || '}}'"""
)


def entry_wire_sql(*, aid: str, user_number: str, status: str, reason: str, effective_at: str) -> str:
    """ENTRY_WIRE over the caller's column expressions."""
    return ENTRY_WIRE.format(
        aid=aid, user_number=user_number, status=status, reason=reason, effective_at=effective_at
    )


# PostgreSQL writes the page's JSON itself (one text value in the wire format) from each entry's
# stored wire form, so Python never touches the rows.
_PAGE_SQL = """
SELECT COUNT(*), MAX(id), COALESCE(string_agg('{{"seq":' || id || ',' || wire, ',' ORDER BY id), '')
FROM ({rows}) page
"""


def _page_rows_sql(scope: Scope, *, after: int, limit: int) -> tuple[str, list[Any]]:
    where, params = scope_condition(scope, ap="e.card_ap_id", at="e.effective_at")
    rendered = entry_wire_sql(
        aid="a.aid",
        user_number="e.user_number",
        status="e.status",
        reason="e.reason",
        effective_at="e.effective_at",
    )
    sql = (
        f"SELECT e.id, CASE WHEN e.wire <> '' THEN e.wire ELSE {rendered} END AS wire "  # noqa: S608
        f"FROM {_ENTRY} e JOIN {_CARD_AP} a ON a.id = e.card_ap_id "
        f"WHERE e.id > %s AND {where} ORDER BY e.id LIMIT %s"
    )
    return sql, [after, *params, limit]


PAGE_WORK_MEM = "64MB"


@dataclass(frozen=True)
class Page:
    entries_json: bytes  # the JSON array of the page's entries
    cursor: int
    has_more: bool


@contextmanager
def rendering_in_local_time(cursor: Any) -> Iterator[None]:
    """PostgreSQL renders times in the service's time zone (Japan time) for the statements run
    inside; the session's zone is put back after them, because Django reads every other
    timestamp of the session as UTC (and an outer transaction may run more statements)."""
    cursor.execute(
        "SELECT current_setting('TimeZone'), set_config('TimeZone', %s, true)",
        [timezone.get_current_timezone_name()],
    )
    previous = cursor.fetchone()[0]
    try:
        yield
    finally:
        # If the transaction failed, its rollback drops the local setting anyway.
        with suppress(DatabaseError):
            cursor.execute("SELECT set_config('TimeZone', %s, true)", [previous])


def delta_page(*, scope: Scope, after: int, limit: int) -> Page:
    """One page of the provider's entries with seq > after, oldest first, as JSON bytes."""
    if scope.empty:
        return Page(b"[]", after, False)
    if connection.vendor == "postgresql":
        return _delta_page_sql(scope, after=after, limit=limit)
    return _delta_page_python(scope, after=after, limit=limit)


def _delta_page_sql(scope: Scope, *, after: int, limit: int) -> Page:
    """PostgreSQL renders the page (the fast path)."""
    rows_sql, params = _page_rows_sql(scope, after=after, limit=limit)
    with transaction.atomic(), connection.cursor() as cursor:
        # The page's rows are sorted with their wire text (1.5 MB for 10,000): in memory, not
        # spilled to a temporary file at the 4 MB default (for this transaction only).
        cursor.execute("SELECT set_config('work_mem', %s, true)", [PAGE_WORK_MEM])
        with rendering_in_local_time(cursor):
            cursor.execute(_PAGE_SQL.format(rows=rows_sql), params)
            count, last, body = cursor.fetchone()
        has_more = False
        if count == limit:  # a full page: one index probe tells whether another follows
            more_sql, more_params = _entry_rows_sql(scope, after=last, limit=1)
            cursor.execute(f"SELECT EXISTS ({more_sql})", more_params)  # noqa: S608 (placeholders only)
            has_more = cursor.fetchone()[0]
    return Page(b"[" + body.encode() + b"]", last if last is not None else after, has_more)


def _delta_page_python(scope: Scope, *, after: int, limit: int) -> Page:
    """The same rows rendered by orjson (other databases, e.g. the embedded SQLite)."""
    rows_sql, params = _entry_rows_sql(scope, after=after, limit=limit + 1)
    with connection.cursor() as cursor:
        cursor.execute(rows_sql, params)
        rows = cursor.fetchall()
    entries = [_entry_dict(row) for row in rows[:limit]]
    return Page(orjson.dumps(entries), entries[-1]["seq"] if entries else after, len(rows) > limit)


def _entry_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    seq, aid, user_number, status, reason, at = row
    return {
        "seq": seq,
        "aid": aid,
        "user_number": user_number,
        "status": status,
        "reason": reason,
        "effective_at": timezone.localtime(_aware(at)).isoformat(),
    }


def entries_after(*, scope: Scope, after: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """The page as Python objects (for callers that want them, e.g. tests and the admin)."""
    page = delta_page(scope=scope, after=after, limit=limit)
    return orjson.loads(page.entries_json), page.has_more


def last_visible_seq(scope: Scope) -> int | None:
    if scope.empty:
        return None
    where, params = scope_condition(scope, ap="card_ap_id", at="effective_at")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT MAX(id) FROM {_ENTRY} WHERE {where}", params)  # noqa: S608 (placeholders only)
        return cursor.fetchone()[0]


def _snapshot_rows_sql(scope: Scope, *, json_rows: bool) -> tuple[str, list[Any]]:
    where, params = scope_condition(scope, ap="i.card_ap_id", at="s.effective_at")
    columns = (
        "'{\"aid\":' || to_json(a.aid)::text || ',\"user_number\":' || to_json(i.user_number)::text"
        " || ',\"status\":' || to_json(s.status)::text || ',\"reason\":' || to_json(s.reason)::text"
        " || ',\"effective_at\":' || to_json(s.effective_at)::text || '}'"
        if json_rows
        else "a.aid, i.user_number, s.status, s.reason, s.effective_at"
    )
    sql = (
        f"SELECT {columns} "  # noqa: S608 (placeholders only)
        f"FROM {CardAPInstallation._meta.db_table} i "
        f"JOIN {CardStatus._meta.db_table} s ON s.card_id = UPPER(i.card_id) "
        f"JOIN {_CARD_AP} a ON a.id = i.card_ap_id "
        f"WHERE i.state <> 'deleted' AND s.status IN ('suspended', 'revoked') AND {where} "
        "ORDER BY a.aid, i.user_number"
    )
    return sql, params


SNAPSHOT_CHUNK = 2000


def snapshot_chunks(*, scope: Scope) -> Iterator[list[bytes]]:
    """Every currently suspended/revoked user number of the provider's visible card APs, as JSON
    objects (bytes), in chunks read from a server-side cursor: memory stays flat however many.
    Must run inside a transaction (PostgreSQL's cursor lives in it)."""
    if scope.empty:
        return
    if connection.vendor == "postgresql":
        sql, params = _snapshot_rows_sql(scope, json_rows=True)
        # A server-side cursor renders its rows when they are fetched: the zone stays set until
        # the last chunk.
        with (
            connection.cursor() as setting,
            rendering_in_local_time(setting),
            connection.chunked_cursor() as cursor,
        ):
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(SNAPSHOT_CHUNK):
                yield [row[0].encode() for row in rows]
        return
    sql, params = _snapshot_rows_sql(scope, json_rows=False)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(SNAPSHOT_CHUNK):
            yield [orjson.dumps(_snapshot_dict(row)) for row in rows]


def _snapshot_dict(row: tuple[Any, ...]) -> dict[str, Any]:
    aid, user_number, status, reason, at = row
    return {
        "aid": aid,
        "user_number": user_number,
        "status": status,
        "reason": reason,
        "effective_at": timezone.localtime(_aware(at)).isoformat(),
    }


def snapshot(*, scope: Scope) -> list[dict[str, Any]]:
    """The snapshot's entries as Python objects (small scopes: tests, the admin)."""
    with transaction.atomic():
        return [orjson.loads(item) for chunk in snapshot_chunks(scope=scope) for item in chunk]


def _aware(value: dt.datetime | str) -> dt.datetime:
    """Raw SQL gives SQLite's naive UTC text; PostgreSQL gives an aware datetime."""
    if isinstance(value, str):
        parsed = parse_datetime(value)
        assert parsed is not None
        value = parsed
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)


def pulls_visible_to(user: Any) -> list[ProviderPull]:
    """J-LIS staff see every provider's last pull; a provider administrator only their own."""
    qs = ProviderPull.objects.select_related("provider").order_by("provider__name")
    if policy.is_jlis(user):
        return list(qs)
    provider_id = policy.principal_of(user).provider_id
    return list(qs.filter(provider_id=provider_id)) if provider_id else []


def feed_history(*, limit: int = 60) -> list[Feed]:
    return list(Feed.objects.order_by("-received_at", "-id")[:limit])
