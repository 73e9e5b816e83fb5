"""The previous revocation code paths, kept callable so the benchmarks compare before and after
in the same run on the same machine (ratios, not absolute times across days). Not used by the
service; each function is a copy of the version it replaced, with only its imports adjusted.

- ``stage_and_apply``: the ingest before orjson/chunked validation and the single streamed COPY
  (stdlib ``json`` per line, a datetime round trip per time, one COPY per 50,000 lines).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from collections.abc import Iterator
from typing import BinaryIO

from revocation import feedfile
from revocation.feedfile import CARD_ID_RE, CHANGE_KEYS, MAX_LINE_BYTES, REASONS, STATUSES, FeedError

_BATCH = 50_000

# The previous statements, as they were.
_REDUCE = """
CREATE TEMP TABLE rev_cand AS
SELECT card, status, reason, at FROM (
  SELECT card, status, reason, at, ROW_NUMBER() OVER (
    PARTITION BY card
    ORDER BY CASE WHEN status = 'revoked' THEN 0 ELSE 1 END,
             CASE WHEN status = 'revoked' THEN at END ASC,
             at DESC, line DESC) AS rn
  FROM rev_stage) ranked
WHERE rn = 1
"""
# Merge with the current status: a revoked card never changes; otherwise a revocation, or an
# event later than the current one, wins; an older event (out of order) is ignored.
_CHANGED = """
CREATE TEMP TABLE rev_changed AS
SELECT c.card, c.status, c.reason, c.at FROM rev_cand c
LEFT JOIN revocation_cardstatus s ON s.card_id = c.card
WHERE s.id IS NULL OR (s.status <> 'revoked' AND (c.status = 'revoked' OR c.at > s.effective_at))
"""
_UPSERT = """
INSERT INTO revocation_cardstatus (card_id, status, reason, effective_at, feed_id)
SELECT card, status, reason, at, %s FROM rev_changed WHERE 1 = 1
ON CONFLICT (card_id) DO UPDATE SET status = excluded.status, reason = excluded.reason,
  effective_at = excluded.effective_at, feed_id = excluded.feed_id
"""
# Each changed card's live card APs become one entry per (card AP, user number); insertion order
# gives the sequence numbers.
_ENTRIES = """
INSERT INTO revocation_revocationentry (card_ap_id, user_number, status, reason, effective_at, feed_id)
SELECT i.card_ap_id, i.user_number, c.status, c.reason, c.at, %s
FROM rev_changed c JOIN cardap_cardapinstallation i ON UPPER(i.card_id) = c.card
WHERE i.state <> 'deleted'
ORDER BY i.card_ap_id, i.id
"""


def _parse_time(value: object, what: str, line: int) -> dt.datetime:
    if not isinstance(value, str):
        raise FeedError("malformed", f"{what} must be a string with a UTC offset", line)
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FeedError("malformed", f"{what} {value[:40]!r} is not an ISO 8601 time", line) from None
    if at.tzinfo is None:
        raise FeedError("malformed", f"{what} {value[:40]!r} has no UTC offset", line)
    return at


def _json_object(raw: bytes, line: int) -> dict:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise FeedError("malformed", "not a JSON object", line) from None
    if not isinstance(obj, dict):
        raise FeedError("malformed", "not a JSON object", line)
    return obj


def iter_changes(stream: BinaryIO, header: feedfile.Header, *, max_changes: int) -> Iterator[feedfile.Change]:
    digest = hashlib.sha256()
    line = 1
    count = 0
    while True:
        raw = stream.readline(MAX_LINE_BYTES + 1)
        if not raw:
            break
        line += 1
        if len(raw) > MAX_LINE_BYTES:
            raise FeedError("oversized", f"line longer than {MAX_LINE_BYTES} bytes", line)
        if not raw.endswith(b"\n"):
            raise FeedError("malformed", "last line is not terminated by a newline", line)
        digest.update(raw)
        count += 1
        if count > max_changes:
            raise FeedError("oversized", f"more than {max_changes} changes", line)
        obj = _json_object(raw, line)
        if set(obj) != CHANGE_KEYS:
            raise FeedError("malformed", f"fields must be exactly {sorted(CHANGE_KEYS)}", line)
        card, status, reason = obj["card"], obj["status"], obj["reason"]
        if not isinstance(card, str) or not CARD_ID_RE.match(card):
            raise FeedError("malformed", "card must be 2 to 40 uppercase hex digits", line)
        if status not in STATUSES:
            raise FeedError(
                "malformed", f"status {str(status)[:20]!r} is not one of {', '.join(STATUSES)}", line
            )
        if reason not in REASONS:
            raise FeedError(
                "malformed", f"reason {str(reason)[:20]!r} is not one of {', '.join(REASONS)}", line
            )
        yield feedfile.Change(line, card, status, reason, _parse_time(obj["at"], "at", line))
    if count != header.count:
        raise FeedError("wrong_count", f"header says {header.count} changes, the file has {count}", line)
    if digest.hexdigest() != header.sha256:
        raise FeedError("wrong_digest", "SHA-256 of the body does not match the header", line)


def _batches(changes: Iterator[feedfile.Change]) -> Iterator[list[feedfile.Change]]:
    batch: list[feedfile.Change] = []
    for change in changes:
        batch.append(change)
        if len(batch) >= _BATCH:
            yield batch
            batch = []
    yield batch


def _db_time(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).isoformat()


def stage_and_apply(stream: BinaryIO, header: feedfile.Header, feed, timings=None):  # noqa: ANN001, ANN201
    """The previous services._stage_and_apply (PostgreSQL branch), same SQL statements."""
    from django.conf import settings
    from django.db import connection

    from revocation import services

    changes = iter_changes(stream, header, max_changes=settings.REVOCATION_FEED_MAX_CHANGES)
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS rev_stage")
        cursor.execute(
            "CREATE TEMP TABLE rev_stage (line bigint, card varchar(40), status varchar(10), "
            "reason varchar(10), at timestamptz)"
        )
        raw = cursor.cursor
        for batch in _batches(changes):
            buf = io.StringIO(
                "".join(f"{c.line}\t{c.card}\t{c.status}\t{c.reason}\t{_db_time(c.at)}\n" for c in batch)
            )
            with raw.copy("COPY rev_stage (line, card, status, reason, at) FROM STDIN") as copy:
                copy.write(buf.getvalue())
        cursor.execute("ANALYZE rev_stage")
        cursor.execute("DROP TABLE IF EXISTS rev_cand")
        cursor.execute("DROP TABLE IF EXISTS rev_changed")
        cursor.execute(_REDUCE)
        cursor.execute(_CHANGED)
        cursor.execute("SELECT COUNT(*) FROM rev_changed")
        cards_changed = cursor.fetchone()[0]
        cursor.execute(_UPSERT, [feed.pk])
        cursor.execute(_ENTRIES, [feed.pk])
        entries_created = cursor.rowcount
        for table in ("rev_changed", "rev_cand", "rev_stage"):
            cursor.execute(f"DROP TABLE {table}")
    return services._Counts(cards_changed=cards_changed, entries_created=entries_created)


# --- The previous provider delta view (ORM rows, a dict per entry, DRF's JSON renderer) -------


def _entry_filter(scope):  # noqa: ANN001, ANN202
    from django.db.models import Q

    q = Q(card_ap_id__in=scope.owned) if scope.owned else Q(pk__in=[])
    for ap_id, start in scope.shared:
        q |= Q(card_ap_id=ap_id, effective_at__gte=start)
    return q


def _entry_json(row, tz):  # noqa: ANN001, ANN202
    return {
        "seq": row["id"],
        "aid": row["card_ap__aid"],
        "user_number": row["user_number"],
        "status": row["status"],
        "reason": row["reason"],
        "effective_at": row["effective_at"].astimezone(tz).isoformat(),
    }


def entries_after(*, scope, after, limit):  # noqa: ANN001, ANN202
    from django.utils import timezone

    from revocation.models import RevocationEntry

    if scope.empty:
        return [], False
    rows = list(
        RevocationEntry.objects.filter(_entry_filter(scope), id__gt=after)
        .order_by("id")
        .values("id", "card_ap__aid", "user_number", "status", "reason", "effective_at")[: limit + 1]
    )
    tz = timezone.get_current_timezone()
    return [_entry_json(r, tz) for r in rows[:limit]], len(rows) > limit


def legacy_scope_for(provider, *, today=None):  # noqa: ANN001, ANN201
    """The previous selectors.scope_for: two ORM querysets of the access policy."""
    from django.utils import timezone

    from operators import policy
    from revocation.selectors import Scope

    visible = policy.card_aps_visible_to(provider, today)
    owned = tuple(sorted(visible.filter(provider=provider).values_list("id", flat=True)))
    starts: dict = {}
    shares = (
        policy.shares_in_force(provider.pk, today)
        .filter(card_ap__in=visible)
        .exclude(card_ap_id__in=owned)
        .values_list("card_ap_id", "since")
    )
    for ap_id, since in shares:
        starts[ap_id] = min(since, starts.get(ap_id, since))
    tz = timezone.get_current_timezone()
    shared = tuple(
        (ap_id, dt.datetime.combine(since, dt.time(), tz)) for ap_id, since in sorted(starts.items())
    )
    return Scope(owned=owned, shared=shared)


def legacy_find_key(token):  # noqa: ANN001, ANN201
    """The previous cardap.apikeys.find_key: an ORM look-up with select_related."""
    import hmac
    import re

    from cardap.apikeys import KEY_PREFIX
    from cardap.models import ProviderAPIKey
    from operators import tokens

    if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        return None
    prefix = token[len(KEY_PREFIX) :].split("_", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{8}", prefix):
        return None
    key = ProviderAPIKey.objects.select_related("provider").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, tokens.digest(token)):
        return None
    return key


def legacy_delta_view():  # noqa: ANN201
    """The previous DeltaView.get with the previous authentication (ORM key look-up), scope (ORM),
    throttle, ETag and framing (DRF APIView, Server-Timing)."""
    import time

    from django.conf import settings
    from django.utils import timezone
    from rest_framework import authentication, exceptions, throttling
    from rest_framework.response import Response
    from rest_framework.views import APIView

    from cardap.apikeys import ProviderClient, address_allowed
    from cardap.models import Provider, ProviderAPIKey
    from operators.audit import client_ip
    from operators.policy import Principal, PrincipalPermission
    from revocation import api, selectors

    class LegacyAuthentication(authentication.BaseAuthentication):
        def authenticate(self, request):  # noqa: ANN001, ANN202
            header = authentication.get_authorization_header(request).decode("latin-1")
            if not header:
                return None
            parts = header.split()
            if len(parts) != 2 or parts[0] != "Bearer":
                raise exceptions.AuthenticationFailed("bad header")
            key = legacy_find_key(parts[1])
            if key is None or not key.is_active:
                raise exceptions.AuthenticationFailed("bad key")
            if key.provider.status not in (Provider.Status.LIVE, Provider.Status.CONTRACTED):
                raise exceptions.AuthenticationFailed("provider")
            if not address_allowed(key, client_ip(request)):
                raise exceptions.PermissionDenied("address")
            now = timezone.now()
            if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
                ProviderAPIKey.objects.filter(pk=key.pk).update(last_used_at=now)
            return ProviderClient(provider=key.provider, key=key), key

        def authenticate_header(self, request):  # noqa: ANN001, ANN202
            return "Bearer"

    class LegacyThrottle(throttling.SimpleRateThrottle):
        scope = "revocations"

        def get_rate(self):  # noqa: ANN202
            return str(settings.REVOCATION_API_RATE)

        def get_cache_key(self, request, view):  # noqa: ANN001, ANN202
            return f"throttle_revocations_{request.user.key.prefix}"

    class LegacyDeltaView(APIView):
        authentication_classes = [LegacyAuthentication]
        permission_classes = [PrincipalPermission.of(Principal.API_CLIENT)]
        throttle_classes = [LegacyThrottle]

        def dispatch(self, request, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            started, cpu = time.perf_counter(), time.thread_time()
            response = super().dispatch(request, *args, **kwargs)
            app_ms, cpu_ms = (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000
            response["Server-Timing"] = f"app;dur={app_ms:.2f}, cpu;dur={cpu_ms:.2f}"
            return response

        def get(self, request):  # noqa: ANN001, ANN202
            query = api.DeltaQuerySerializer(data=request.query_params)
            query.is_valid(raise_exception=True)
            after, limit = query.validated_data["after"], query.validated_data["limit"]
            client = request.user
            scope = legacy_scope_for(client.provider)
            etag = legacy_delta_etag(provider=client.provider, scope=scope, after=after, limit=limit)
            if etag in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
                legacy_record_pull(provider=client.provider, key=client.key, kind="delta", last_seq=after)
                return _legacy_cache_headers(api.HttpResponse(status=304), etag)
            entries, has_more = entries_after(scope=scope, after=after, limit=limit)
            cursor = entries[-1]["seq"] if entries else after
            feed = selectors.last_applied_feed()
            legacy_record_pull(provider=client.provider, key=client.key, kind="delta", last_seq=cursor)
            body = {
                "entries": entries,
                "cursor": cursor,
                "next": cursor if has_more else None,
                "has_more": has_more,
                "feed": feed.number if feed else None,
            }
            return _legacy_cache_headers(Response(body), etag)

    return LegacyDeltaView.as_view()


def legacy_record_pull(*, provider, key, kind, last_seq):  # noqa: ANN001, ANN201
    """The previous services.record_pull: one UPDATE whose commit waits for the WAL flush (the
    row exists: the benchmark's first pull made it)."""
    from django.db import connection
    from django.utils import timezone

    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE revocation_providerpull SET pulls = pulls + 1, pulled_at = %s, kind = %s, "
            "last_seq = %s, key_prefix = %s WHERE provider_id = %s",
            [timezone.now(), kind, last_seq, key.prefix, provider.pk],
        )


def legacy_delta_etag(*, provider, scope, after, limit):  # noqa: ANN001, ANN201
    """The previous selectors.delta_etag (feed MAX(id) in plain SQL, the scope's signature)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT MAX(id) FROM revocation_feed WHERE state = %s", ["applied"])
        feed_id = cursor.fetchone()[0]
    raw = f"v2|{provider.pk}|{after}|{limit}|{feed_id}|{scope.signature()}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def _legacy_cache_headers(response, etag):  # noqa: ANN001, ANN201
    from revocation import api

    response["ETag"] = etag
    response["Cache-Control"] = f"private, max-age={api.cache_seconds()}, must-revalidate"
    response["Vary"] = "Authorization, Accept-Language"
    return response


# --- The previous snapshot (whole list in memory, serialised at once, signed in one piece) -----


def snapshot_body(provider):  # noqa: ANN001, ANN201
    """The previous SnapshotView's body: every entry as a dict, json.dumps of the whole payload."""
    import json

    from django.db import connection
    from django.utils import timezone

    from revocation import keys, selectors

    scope = legacy_scope_for(provider)
    feed = selectors.last_applied_feed()
    conditions, params = [], []
    if scope.owned:
        conditions.append(f"i.card_ap_id IN ({', '.join(['%s'] * len(scope.owned))})")
        params.extend(scope.owned)
    for ap_id, start in scope.shared:
        conditions.append("(i.card_ap_id = %s AND s.effective_at >= %s)")
        params.extend([ap_id, start])
    sql = (
        "SELECT a.aid, i.user_number, s.status, s.reason, s.effective_at "
        "FROM cardap_cardapinstallation i "
        "JOIN revocation_cardstatus s ON s.card_id = UPPER(i.card_id) "
        "JOIN cardap_cardap a ON a.id = i.card_ap_id "
        "WHERE i.state <> 'deleted' AND s.status IN ('suspended', 'revoked') "
        f"AND ({' OR '.join(conditions)}) "
        "ORDER BY a.aid, i.user_number"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    entries = [
        {
            "aid": aid,
            "user_number": user_number,
            "status": status,
            "reason": reason,
            "effective_at": timezone.localtime(at).isoformat(),
        }
        for aid, user_number, status, reason, at in rows
    ]
    payload = {
        "provider": provider.name,
        "feed": feed.number if feed else None,
        "as_of_seq": selectors.last_visible_seq(scope),
        "count": len(entries),
        "entries": entries,
    }
    payload["generated_at"] = timezone.localtime().isoformat()
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
    return body, keys.sign(body)


def sync_snapshot_view():  # noqa: ANN201
    """The snapshot view as it was before it streamed under ASGI: the same body generator handed
    to Django as a synchronous iterator, which Django's ASGI handler reads whole before sending
    (no pull record; the body only, for the memory comparison under uvicorn)."""
    from django.http import StreamingHttpResponse

    from revocation import api

    class SyncSnapshotView(api.SnapshotView):
        def get(self, request):  # noqa: ANN001, ANN202
            body = api._snapshot_body(self.client(request))
            return self.tagged(StreamingHttpResponse(body, content_type="application/json"), None)

    return SyncSnapshotView.as_view()
