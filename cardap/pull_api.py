"""The framing the providers' pull feeds share (the revocation feed, R6, and the installations
feed, R7): API-key authentication, the per-key rate limit, the ``?after=&limit=`` cursor, strong
ETags with ``If-None-Match`` and ``Server-Timing``. In cardap so that both apps may import it
(tests/test_layers.py): each feed says only how it reads its rows and tags its state.

A feed's ETag is computed from a small high-water mark written in the same transaction as the
feed's rows (the last applied feed; the provider's last installation event) and from the
provider's scope, so a 304 never reads the big tables and can never be stale.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any, ClassVar, NoReturn

from django.conf import settings
from django.core.cache.backends.redis import RedisCacheClient
from django.http import HttpResponse, HttpResponseBase
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, serializers, throttling
from rest_framework.request import Request
from rest_framework.views import APIView

from cardap.apikeys import ProviderAPIKeyAuthentication, ProviderClient, ProviderState
from operators.policy import Principal, PrincipalPermission

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000

# The caller must be a provider's business system (an API key), per the one access policy.
IsProviderClient = PrincipalPermission.of(Principal.API_CLIENT)


class CursorQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=2**62, default=0, help_text="Return entries with seq greater than this."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT, help_text=f"Page size, 1..{MAX_LIMIT}."
    )


IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, description="ETag of a previous answer."
)

ERRORS = {
    400: OpenApiResponse(description="Bad query parameter (the message names it)."),
    401: OpenApiResponse(description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(description="Call from outside the key's allowed networks."),
    429: OpenApiResponse(description="Rate limit of the API key exceeded; see Retry-After."),
}


# The key's requests within the period, kept as a sorted set in Redis and checked and recorded
# in one atomic step: drop those older than the period, count, add this one if under the limit,
# else answer how long until the oldest leaves the period (ms).
_SLIDING_WINDOW_LUA = """
local now, period, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], period)
  return -1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return math.max(0, tonumber(oldest[2]) + period - now)
"""


class PerAPIKeyThrottle(throttling.SimpleRateThrottle):
    """One bucket per API key and feed (the view's ``bucket``); the rate is REVOCATION_API_RATE
    for every feed, over a sliding period (the key's requests of the last minute, say).

    With Redis (production) the check and the count are one atomic script: DRF's own way reads
    the key's history and writes it back, so requests of one key arriving together (several
    workers, or threads) overwrote each other's count and passed the limit. Other caches (the
    single-process development server) keep DRF's way."""

    scope = "provider_feeds"

    def get_rate(self) -> str:
        return str(settings.REVOCATION_API_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        if not isinstance(user, ProviderClient):
            return None
        return f"throttle_{view.bucket}_{user.key.prefix}"

    def allow_request(self, request: Request, view: Any) -> bool:
        backend = getattr(self.cache, "_cache", None)
        if not isinstance(backend, RedisCacheClient) or self.rate is None:
            return super().allow_request(request, view)
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        limit, period = self.parse_rate(self.rate)
        assert limit is not None and period is not None
        now_ms, period_ms = int(self.timer() * 1000), int(period * 1000)
        client = backend.get_client(key, write=True)
        wait_ms = client.eval(
            _SLIDING_WINDOW_LUA,
            1,
            self.cache.make_and_validate_key(key),
            now_ms,
            period_ms,
            limit,
            f"{now_ms}-{secrets.token_hex(6)}",
        )
        self._wait = None if wait_ms < 0 else wait_ms / 1000
        return wait_ms < 0

    def wait(self) -> float | None:
        if hasattr(self, "_wait"):
            return self._wait
        return super().wait()


def strong_etag(*parts: object) -> str:
    return '"' + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:32] + '"'


def not_modified(request: Request, etag: str) -> bool:
    """``If-None-Match`` names this ETag (or is ``*``)."""
    header = request.headers.get("If-None-Match", "")
    return header.strip() == "*" or etag in {tag.strip() for tag in header.split(",")}


def _cursor_value(raw: str | None, default: int, low: int, high: int) -> int | None:
    """A plain decimal in range, or None (then the serializer says what is wrong)."""
    if raw is None:
        return default
    if not (0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()):
        return None
    value = int(raw)
    return value if low <= value <= high else None


class ProviderFeedView(APIView):
    """Base of a provider pull feed. Subclasses set ``bucket`` (the rate-limit bucket) and
    ``cache_control``, and use ``cursor``, ``not_modified`` and ``tagged``."""

    authentication_classes = [ProviderAPIKeyAuthentication]
    permission_classes = [IsProviderClient]
    throttle_classes = [PerAPIKeyThrottle]
    bucket: ClassVar[str]
    query_serializer: ClassVar[type[CursorQuerySerializer]] = CursorQuerySerializer

    def dispatch(self, request: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        """Adds ``Server-Timing: app;dur=<ms>, cpu;dur=<ms>``: the view's own time and its
        thread's CPU time, authentication and rate limit included (for a streamed answer: until
        the first byte is ready). The database's share is in app, not in cpu."""
        started, cpu = time.perf_counter(), time.thread_time()
        response = super().dispatch(request, *args, **kwargs)
        app_ms, cpu_ms = (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000
        response["Server-Timing"] = f"app;dur={app_ms:.2f}, cpu;dur={cpu_ms:.2f}"
        return response

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise exceptions.Throttled(
            wait=wait,
            detail=_(
                "リクエストが多すぎます（APIキーごとの上限 %(rate)s）。しばらく待ってから再試行してください。"
            )
            % {"rate": settings.REVOCATION_API_RATE},
        )

    def client(self, request: Request) -> ProviderClient:
        user = request.user
        assert isinstance(user, ProviderClient)  # IsProviderClient let it in
        return user

    def cursor(self, request: Request) -> tuple[int, int]:
        """``after`` and ``limit`` from the query; a bad value is refused by the serializer,
        whose message names it (the common well-formed case skips building it)."""
        params = request.query_params
        after = _cursor_value(params.get("after"), 0, 0, 2**62)
        limit = _cursor_value(params.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT)
        if after is not None and limit is not None and set(params) <= {"after", "limit"}:
            return after, limit
        query = self.query_serializer(data=params)
        query.is_valid(raise_exception=True)
        return query.validated_data["after"], query.validated_data["limit"]

    not_modified = staticmethod(not_modified)

    def provider_state(self) -> ProviderState | None:
        """What the feed reads with the API key, in the key's own statement (the feed's
        high-water mark and the provider's scope, say): an SQL query of exactly one row (an
        aggregate) over ``{provider}``, the key's provider id, and its parameters; the row is
        ``client(request).state``. Then a 304 costs that one statement (and the pull record).
        None: nothing (the feed reads what it needs itself)."""
        return None

    def cache_control(self) -> str:
        return "private, no-cache"

    def tagged(self, response: HttpResponseBase, etag: str | None) -> HttpResponseBase:
        if etag is not None:
            response["ETag"] = etag
        response["Cache-Control"] = self.cache_control()
        response["Vary"] = "Authorization, Accept-Language"
        return response

    def not_modified_response(self, etag: str) -> HttpResponse:
        response = HttpResponse(status=304)
        self.tagged(response, etag)
        return response
