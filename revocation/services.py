"""Taking in the card call centre's feed (R6): verify, apply atomically and idempotently, keep a
record of every file, and tell J-LIS staff when a feed is refused.

Apply is set-based: the body is streamed once (validated line by line) into a temporary staging
table (PostgreSQL COPY, SQLite batched inserts), then a few SQL statements reduce each card's
events, merge them with the current statuses and write the providers' entries, all inside one
transaction, so a crash leaves the previous state and a rerun completes the feed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone, translation

from cardap.models import Provider, ProviderAPIKey
from operators import audit
from revocation import feedfile, selectors
from revocation.keys import feed_public_key
from revocation.models import Feed, ProviderPull, RevocationEntry

log = logging.getLogger(__name__)

_LOCK_KEY = 0x5245564F  # "REVO": one feed applied at a time, so sequence numbers commit in order
_BATCH = 50_000
HTTP_TIMEOUT = 30


@dataclass(frozen=True)
class _Counts:
    cards_changed: int
    entries_created: int


def last_applied_number() -> int | None:
    return (
        Feed.objects.filter(state=Feed.State.APPLIED)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def apply_feed(*, path: Path, signature: bytes | None = None, source: str = "") -> Feed:
    """Verify and apply one feed file; returns its Feed record (applied, duplicate or rejected).

    The signature defaults to the ``<file>.sig`` next to it. Never raises for a bad feed: the
    reason is on the record and a failure notice goes to J-LIS staff (once per incident)."""
    size = path.stat().st_size
    feed = Feed.objects.create(source=(source or str(path))[:500], size=size, file_sha256=_file_sha256(path))
    try:
        if size > settings.REVOCATION_FEED_MAX_BYTES:
            raise feedfile.FeedError(
                "oversized", f"file is {size} bytes, more than the limit {settings.REVOCATION_FEED_MAX_BYTES}"
            )
        if signature is None:
            sig_path = feedfile.signature_path(path)
            if not sig_path.exists():
                raise feedfile.FeedError("bad_signature", f"signature file {sig_path.name} is missing")
            signature = sig_path.read_bytes()
        with path.open("rb") as stream:
            header = feedfile.read_header(stream, signature, feed_public_key())
            feed.number, feed.previous, feed.created, feed.count = (
                header.feed,
                header.previous,
                header.created,
                header.count,
            )
            feed.save(update_fields=["number", "previous", "created", "count"])
            with transaction.atomic():
                _lock()
                if _is_duplicate(feed, header):
                    feed.state = Feed.State.DUPLICATE
                else:
                    _check_sequence(header)
                    counts = _stage_and_apply(stream, header, feed)
                    feed.state = Feed.State.APPLIED
                    feed.cards_changed, feed.entries_created = counts.cards_changed, counts.entries_created
                feed.finished_at = timezone.now()
                feed.save()
    except feedfile.FeedError as exc:
        _reject(feed, exc)
    log.info("revocation feed %s from %s: %s", feed.number, feed.source, feed.state)
    audit.record(
        action=f"revocation.feed_{feed.state}",
        actor="system",
        target=f"feed {feed.number}",
        detail={"feed_record": feed.pk, "reason_code": feed.reason_code, "line": feed.reason_line},
    )
    return feed


def _lock() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])


def _is_duplicate(feed: Feed, header: feedfile.Header) -> bool:
    """The same file again changes nothing; a different file under an applied number is refused."""
    applied = Feed.objects.filter(state=Feed.State.APPLIED, number=header.feed).first()
    if applied is None:
        return False
    if applied.file_sha256 == feed.file_sha256:
        return True
    raise feedfile.FeedError("regression", f"feed {header.feed} was already applied with different content")


def _check_sequence(header: feedfile.Header) -> None:
    last = last_applied_number()
    if last is None:
        return  # the first feed ever taken in starts the sequence
    if header.feed < last:
        raise feedfile.FeedError(
            "regression", f"feed {header.feed} is older than the last applied feed {last}"
        )
    if header.feed != last + 1 or header.previous != last:
        raise feedfile.FeedError(
            "gap",
            f"feed {header.feed} (previous {header.previous}) does not follow the last applied feed {last}; "
            f"expected feed {last + 1}",
        )


def _db_time(at: dt.datetime) -> str:
    """A time as this database stores it: PostgreSQL parses ISO with offset; Django's SQLite
    backend stores naive UTC text, which sorts correctly as text."""
    utc = at.astimezone(dt.UTC)
    return utc.isoformat() if connection.vendor == "postgresql" else utc.replace(tzinfo=None).isoformat(" ")


def _copy_text(rows: Iterator[feedfile.Row], lines_per_chunk: int = 4096) -> Iterator[str]:
    """The feed's rows as COPY text, a chunk at a time: one COPY streams the whole body, so
    PostgreSQL parses and stores rows while Python validates the next ones, and memory stays flat.
    A feed error raised while reading aborts the COPY (psycopg sends COPY FAIL) and reaches the
    caller as itself."""
    while batch := [
        f"{line}\t{card}\t{status}\t{reason}\t{at}\n"
        for line, card, status, reason, at, _ in itertools.islice(rows, lines_per_chunk)
    ]:
        yield "".join(batch)


def _stage(stream: BinaryIO, header: feedfile.Header, timings: dict[str, float]) -> None:
    rows = feedfile.iter_rows(stream, header, max_changes=settings.REVOCATION_FEED_MAX_CHANGES)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS rev_stage")
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE TEMP TABLE rev_stage (line bigint, card varchar(40), status varchar(10), "
                "reason varchar(10), at timestamptz)"
            )
            # The card identifiers, status words and validated times hold no tab, newline or
            # backslash, so the COPY text needs no escaping.
            with cursor.cursor.copy("COPY rev_stage (line, card, status, reason, at) FROM STDIN") as copy:
                for chunk in _copy_text(rows):
                    copy.write(chunk)
            timings["parse_copy"] = time.perf_counter() - started
        else:
            cursor.execute(
                "CREATE TEMP TABLE rev_stage (line integer, card varchar(40), status varchar(10), "
                "reason varchar(10), at text)"
            )
            while batch := list(itertools.islice(rows, _BATCH)):
                cursor.executemany(
                    "INSERT INTO rev_stage (line, card, status, reason, at) VALUES (%s, %s, %s, %s, %s)",
                    [(r[0], r[1], r[2], r[3], _db_time(r[5])) for r in batch],
                )
            timings["parse_copy"] = time.perf_counter() - started


# Per card, the event that decides: the first revocation if any (revocation is final), otherwise
# the latest event by time (a later line wins a tie). {collate} sorts the card identifiers
# bytewise on PostgreSQL (COLLATE "C": uppercase hex, so the same order, without locale rules).
_REDUCE = """
CREATE TEMP TABLE rev_cand AS
SELECT card, status, reason, at FROM (
  SELECT card, status, reason, at, ROW_NUMBER() OVER (
    PARTITION BY card{collate}
    ORDER BY CASE WHEN status = 'revoked' THEN 0 ELSE 1 END,
             CASE WHEN status = 'revoked' THEN at END ASC,
             at DESC, line DESC) AS rn
  FROM rev_stage) ranked
WHERE rn = 1
"""
# The same choice on PostgreSQL in one sort pass, with no window function over a million rows
# (DISTINCT ON keeps the first row of each card in that order), merged with the current status
# (_CHANGED) in the same statement: the candidates are never written to a table.
_REDUCE_CHANGED_PG = """
CREATE TEMP TABLE rev_changed AS
SELECT c.card, c.status, c.reason, c.at, s.id AS existing FROM (
  SELECT DISTINCT ON (card COLLATE "C") card, status, reason, at FROM rev_stage
  ORDER BY card COLLATE "C",
           CASE WHEN status = 'revoked' THEN 0 ELSE 1 END,
           CASE WHEN status = 'revoked' THEN at END ASC,
           at DESC, line DESC
) c
LEFT JOIN revocation_cardstatus s ON s.card_id = c.card
WHERE s.id IS NULL OR (s.status <> 'revoked' AND (c.status = 'revoked' OR c.at > s.effective_at))
"""
# Merge with the current status: a revoked card never changes; otherwise a revocation, or an
# event later than the current one, wins; an older event (out of order) is ignored. `existing`
# is the card's status row, if any: updated in place, the others inserted.
_CHANGED = """
CREATE TEMP TABLE rev_changed AS
SELECT c.card, c.status, c.reason, c.at, s.id AS existing FROM rev_cand c
LEFT JOIN revocation_cardstatus s ON s.card_id = c.card
WHERE s.id IS NULL OR (s.status <> 'revoked' AND (c.status = 'revoked' OR c.at > s.effective_at))
"""
_UPDATE = """
UPDATE revocation_cardstatus SET status = c.status, reason = c.reason, effective_at = c.at, feed_id = %s
FROM rev_changed c WHERE revocation_cardstatus.id = c.existing
"""
# New cards in index order: each insert lands beside the previous one in the unique index.
_INSERT = """
INSERT INTO revocation_cardstatus (card_id, status, reason, effective_at, feed_id)
SELECT card, status, reason, at, %s FROM rev_changed WHERE existing IS NULL ORDER BY card{collate}
"""
# Each changed card's live card APs become one entry per (card AP, user number); insertion order
# gives the sequence numbers.
_ENTRIES = """
INSERT INTO revocation_revocationentry (card_ap_id, user_number, status, reason, effective_at, feed_id{wire})
SELECT i.card_ap_id, i.user_number, c.status, c.reason, c.at, %s{wire_value}
FROM rev_changed c JOIN cardap_cardapinstallation i ON UPPER(i.card_id) = c.card{join}
WHERE i.state <> 'deleted'
ORDER BY i.card_ap_id, i.id
"""


def _entries_sql(postgresql: bool) -> str:
    """On PostgreSQL each entry's wire form is written with it (in Japan time); elsewhere the
    reads render it from the columns."""
    if not postgresql:
        return _ENTRIES.format(wire="", wire_value="", join="")
    wire = selectors.entry_wire_sql(
        aid="a.aid", user_number="i.user_number", status="c.status", reason="c.reason", effective_at="c.at"
    )
    return _ENTRIES.format(
        wire=", wire", wire_value=f", {wire}", join=" JOIN cardap_cardap a ON a.id = i.card_ap_id"
    )


# For this transaction only (set_config(..., true) = SET LOCAL): sorting a million staged rows
# and hashing the joins fit in memory instead of spilling to disk at the 4 MB default; and no
# JIT compilation, which the planner picks for these large statements and which costs seconds
# of compiling for statements that run once.
# The commit does not wait for the WAL flush either (synchronous_commit off): still one
# all-or-nothing transaction, and a crash right after it can only lose the whole feed, which the
# next sync takes in again (its Feed record's state is written in the same transaction).
_PG_LOCAL_SETTINGS = {"work_mem": "256MB", "jit": "off", "synchronous_commit": "off"}


def _stage_and_apply(
    stream: BinaryIO, header: feedfile.Header, feed: Feed, timings: dict[str, float] | None = None
) -> _Counts:
    """Stage and apply; ``timings`` (if given) receives seconds per phase: parse_copy (validation
    and COPY, overlapped), reduce, changed, analyze, update, insert, entries."""
    timings = {} if timings is None else timings
    postgresql = connection.vendor == "postgresql"
    collate = ' COLLATE "C"' if postgresql else ""
    if postgresql:
        with connection.cursor() as cursor:
            for name, value in _PG_LOCAL_SETTINGS.items():
                cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
    _stage(stream, header, timings)
    with connection.cursor() as cursor:

        def timed(phase: str, sql: str, params: list[int] | None = None) -> None:
            started = time.perf_counter()
            cursor.execute(sql, params)
            timings[phase] = time.perf_counter() - started

        cursor.execute("DROP TABLE IF EXISTS rev_cand")
        cursor.execute("DROP TABLE IF EXISTS rev_changed")
        if postgresql:
            timed("reduce_changed", _REDUCE_CHANGED_PG)
        else:
            timed("reduce", _REDUCE.format(collate=collate))
            timed("changed", _CHANGED)
        if postgresql:
            timed("analyze", "ANALYZE rev_changed")  # true sizes for the joins that follow
        cursor.execute("SELECT COUNT(*) FROM rev_changed")
        cards_changed = cursor.fetchone()[0]
        timed("update", _UPDATE, [feed.pk])
        timed("insert", _INSERT.format(collate=collate), [feed.pk])
        if postgresql:
            with selectors.rendering_in_local_time(cursor):
                timed("entries", _entries_sql(True), [feed.pk])
                entries_created = cursor.rowcount
        else:
            timed("entries", _entries_sql(False), [feed.pk])
            entries_created = cursor.rowcount
        if postgresql:
            # The delta page's plan depends on the entries' statistics (a sample, so its cost
            # is bounded): without them, the planner sorted all of a provider's entries instead
            # of reading them in seq order. Not left to autovacuum, which may not run for a
            # while after a feed (or, on some machines, at all).
            timed("entries_stats", f"ANALYZE {RevocationEntry._meta.db_table}")
        for table in ("rev_changed", "rev_cand", "rev_stage"):
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    log.info(
        "revocation feed %s applied: %s",
        header.feed,
        ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in timings.items()),
    )
    return _Counts(cards_changed=cards_changed, entries_created=entries_created)


def _reject(feed: Feed, exc: feedfile.FeedError) -> None:
    feed.state = Feed.State.REJECTED
    feed.reason_code = exc.code
    feed.reason = exc.message
    feed.reason_line = exc.line
    feed.finished_at = timezone.now()
    incident_seen = (
        Feed.objects.filter(file_sha256=feed.file_sha256, reason_code=exc.code, notified=True)
        .exclude(pk=feed.pk)
        .exists()
    )
    if not incident_seen:
        _notify(feed)
        feed.notified = True
    feed.save()


def _notify(feed: Feed) -> None:
    where = f" (line {feed.reason_line})" if feed.reason_line else ""
    with translation.override("ja"):
        label_ja = feed.reason_label
    send_mail(
        subject=(
            "[カードAP搭載システム] 失効情報フィードの取込みを停止しました / "
            f"Revocation feed refused: {feed.reason_code}"
        ),
        message=(
            "失効情報フィードを拒否しました。何も適用していません。\n"
            "The revocation feed was refused as a whole; nothing was applied.\n\n"
            f"理由: {label_ja}\n"
            f"feed: {feed.number}\nsource: {feed.source}\nreason: {feed.reason_code}{where}: {feed.reason}\n"
            f"file SHA-256: {feed.file_sha256}\nrecord: {feed.pk}\n"
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=list(settings.JLIS_NOTICE_EMAILS),
        fail_silently=False,
    )


def sync_directory(*, directory: Path) -> list[Feed]:
    """Apply, in order, every feed in ``directory`` newer than the last applied one; stop at the
    first that is refused (a gap stays a gap until the missing feed arrives)."""
    last = last_applied_number()
    pending = sorted(
        (int(m.group(1)), p)
        for p in directory.iterdir()
        if (m := feedfile.FILE_RE.match(p.name)) and (last is None or int(m.group(1)) > last)
    )
    results = []
    for _number, path in pending:
        feed = apply_feed(path=path, source=str(path))
        results.append(feed)
        if feed.state != Feed.State.APPLIED:
            break
    return results


def _check_url(url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"feed URL must be https:// (got {url!r})")


def _redact(url: str) -> str:
    """The URL without any user:password, for records, mail and logs."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def _download(url: str, target: Path, limit: int) -> None:
    _check_url(url)
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response, target.open("wb") as out:  # noqa: S310 (scheme checked)
        total = 0
        while chunk := response.read(1 << 20):
            total += len(chunk)
            if total > limit:
                # Keep what fits plus one byte: apply_feed records the file as oversized.
                out.write(chunk[: max(0, limit - total + len(chunk)) + 1])
                break
            out.write(chunk)


def sync_url(*, base_url: str) -> list[Feed]:
    """Like sync_directory, from ``<base_url>/index.txt`` and the files it lists."""
    base = base_url.rstrip("/") + "/"
    _check_url(base)
    with urllib.request.urlopen(base + "index.txt", timeout=HTTP_TIMEOUT) as response:  # noqa: S310
        names = response.read(1 << 20).decode().split()
    last = last_applied_number()
    results = []
    with tempfile.TemporaryDirectory(prefix="revfeed-") as tmp:
        for name in sorted(n for n in names if feedfile.FILE_RE.match(n)):
            match = feedfile.FILE_RE.match(name)
            assert match is not None
            if last is not None and int(match.group(1)) <= last:
                continue
            path = Path(tmp) / name
            _download(base + name, path, settings.REVOCATION_FEED_MAX_BYTES)
            _download(base + name + ".sig", feedfile.signature_path(path), 4096)
            feed = apply_feed(path=path, source=_redact(base + name))
            path.unlink()
            results.append(feed)
            if feed.state != Feed.State.APPLIED:
                break
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def sync_configured_source() -> list[Feed]:
    """The daily sync: the configured HTTPS URL, or else the configured directory."""
    if settings.REVOCATION_FEED_URL:
        return sync_url(base_url=settings.REVOCATION_FEED_URL)
    directory = Path(settings.REVOCATION_FEED_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    return sync_directory(directory=directory)


def record_pull(*, provider: Provider, key: ProviderAPIKey, kind: str, last_seq: int | None) -> None:
    """Remember a provider's last pull (one UPDATE; the row is created on the first pull)."""
    now = timezone.now()
    fields = {"pulled_at": now, "kind": kind, "last_seq": last_seq, "key_prefix": key.prefix}
    # Plain SQL: this runs on every pull, 304s included. It is bookkeeping (what the admin shows
    # as the last pull), so its commit need not wait for the WAL flush: a crash can lose the
    # last few milliseconds of it, never corrupt it; this is most of a 304's cost otherwise.
    # Both statements go in one message, one implicit transaction; in an outer transaction the
    # setting lasts until that one ends.
    no_wait = "SET LOCAL synchronous_commit TO OFF; " if connection.vendor == "postgresql" else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"{no_wait}UPDATE {ProviderPull._meta.db_table} SET pulls = pulls + 1, pulled_at = %s, kind = %s,"  # noqa: S608
            " last_seq = %s, key_prefix = %s WHERE provider_id = %s",
            [now, kind, last_seq, key.prefix, provider.pk],
        )
        if no_wait:
            cursor.nextset()  # the UPDATE's result comes after the SET's
        updated = cursor.rowcount
    if not updated:
        try:
            with transaction.atomic():
                ProviderPull.objects.create(provider=provider, pulls=1, **fields)
        except IntegrityError:  # a concurrent first pull created it
            ProviderPull.objects.filter(provider=provider).update(pulls=F("pulls") + 1, **fields)
