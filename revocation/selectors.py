"""Reads of revocation data, always scoped to one provider (R1.5, R6).

A provider sees entries of the card APs it represents, and of card APs it shares or is affiliated
to while that share is in force (today within since..until) and only from the share's start day.
Never the card identifier, never another provider's card APs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from cardap.models import Provider
from operators import policy
from revocation.models import Feed, ProviderPull, RevocationEntry

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


def scope_for(provider: Provider, *, today: dt.date | None = None) -> Scope:
    """The card APs the provider may see (operators.policy.card_aps_visible_to): its own entirely,
    shared or affiliated ones from the start day of the relationship in force."""
    visible = policy.card_aps_visible_to(provider, today)
    owned = tuple(sorted(visible.filter(provider=provider).values_list("id", flat=True)))
    starts: dict[int, dt.date] = {}
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


def _entry_filter(scope: Scope) -> Q:
    q = Q(card_ap_id__in=scope.owned) if scope.owned else Q(pk__in=[])
    for ap_id, start in scope.shared:
        q |= Q(card_ap_id=ap_id, effective_at__gte=start)
    return q


def last_applied_feed() -> Feed | None:
    return Feed.objects.filter(state=Feed.State.APPLIED).order_by("-number").first()


def delta_etag(*, provider: Provider, scope: Scope, after: int, limit: int) -> str:
    """Changes only when a feed is applied or the provider's scope changes (entries are written
    by feeds only), so a 304 costs two small queries."""
    feed_id = Feed.objects.filter(state=Feed.State.APPLIED).aggregate(m=Max("id"))["m"]
    raw = f"v1|{provider.pk}|{after}|{limit}|{feed_id}|{scope.signature()}"
    return '"' + hashlib.sha256(raw.encode()).hexdigest()[:32] + '"'


def _entry_json(row: Any, tz: dt.tzinfo) -> dict[str, Any]:
    return {
        "seq": row["id"],
        "aid": row["card_ap__aid"],
        "user_number": row["user_number"],
        "status": row["status"],
        "reason": row["reason"],
        "effective_at": row["effective_at"].astimezone(tz).isoformat(),
    }


def entries_after(*, scope: Scope, after: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """One page of the provider's entries with seq > after, oldest first; and whether more follow."""
    if scope.empty:
        return [], False
    rows = list(
        RevocationEntry.objects.filter(_entry_filter(scope), id__gt=after)
        .order_by("id")
        .values("id", "card_ap__aid", "user_number", "status", "reason", "effective_at")[: limit + 1]
    )
    tz = timezone.get_current_timezone()  # looked up once: this loop runs for up to 10,000 rows
    return [_entry_json(r, tz) for r in rows[:limit]], len(rows) > limit


def last_visible_seq(scope: Scope) -> int | None:
    if scope.empty:
        return None
    return RevocationEntry.objects.filter(_entry_filter(scope)).aggregate(m=Max("id"))["m"]


def snapshot(*, scope: Scope) -> list[dict[str, Any]]:
    """Current suspended/revoked status of every user number of the provider's visible card APs."""
    if scope.empty:
        return []
    conditions: list[str] = []
    params: list[Any] = []
    if scope.owned:
        conditions.append(f"i.card_ap_id IN ({', '.join(['%s'] * len(scope.owned))})")
        params.extend(scope.owned)
    for ap_id, start in scope.shared:
        conditions.append("(i.card_ap_id = %s AND s.effective_at >= %s)")
        params.extend([ap_id, connection.ops.adapt_datetimefield_value(start)])
    # Only placeholders are formatted in; every value is a parameter.
    sql = (
        "SELECT a.aid, i.user_number, s.status, s.reason, s.effective_at "  # noqa: S608 (only placeholders are formatted in)
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
    out = []
    for aid, user_number, status, reason, at in rows:
        out.append(
            {
                "aid": aid,
                "user_number": user_number,
                "status": status,
                "reason": reason,
                "effective_at": timezone.localtime(_aware(at)).isoformat(),
            }
        )
    return out


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
