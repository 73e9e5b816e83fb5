"""The providers' revocation feed over REST (R6): delta pulls by sequence number, a signed
snapshot for reconciliation, and the public key that verifies it. Authenticated by API key."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, NoReturn

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers, throttling
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cardap.apikeys import ProviderAPIKeyAuthentication, ProviderClient
from operators.policy import Principal, PrincipalPermission
from revocation import keys, selectors, services

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
SYNC_GRACE = dt.timedelta(hours=1)  # the sync normally finishes well within this after its start


# The caller must be a provider's business system (an API key), per the one access policy.
IsProviderClient = PrincipalPermission.of(Principal.API_CLIENT)


class PerAPIKeyThrottle(throttling.SimpleRateThrottle):
    """One bucket per API key, kept in the cache (Redis in production)."""

    scope = "revocations"

    def get_rate(self) -> str:
        return str(settings.REVOCATION_API_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        return f"throttle_revocations_{user.key.prefix}" if isinstance(user, ProviderClient) else None


class EntrySerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="Strictly increasing sequence number; pull with ?after=<seq>.")
    aid = serializers.CharField(help_text="AID of the card AP (hex).")
    user_number = serializers.CharField(help_text="The user number stored in the card AP.")
    status = serializers.ChoiceField(choices=["suspended", "resumed", "revoked"])
    reason = serializers.ChoiceField(choices=["lost", "stolen", "found", "reissued", "expired", "other"])
    effective_at = serializers.DateTimeField(help_text="When the change took effect (Japan time).")


class DeltaPageSerializer(serializers.Serializer):
    entries = EntrySerializer(many=True)
    cursor = serializers.IntegerField(help_text="Pass as ?after= next time (the last seq seen).")
    next = serializers.IntegerField(allow_null=True, help_text="Cursor of the next page, null when none.")
    has_more = serializers.BooleanField()
    feed = serializers.IntegerField(allow_null=True, help_text="Number of the last applied upstream feed.")


class SnapshotEntrySerializer(serializers.Serializer):
    aid = serializers.CharField()
    user_number = serializers.CharField()
    status = serializers.ChoiceField(choices=["suspended", "revoked"])
    reason = serializers.CharField()
    effective_at = serializers.DateTimeField()


class SnapshotSerializer(serializers.Serializer):
    provider = serializers.CharField()
    generated_at = serializers.DateTimeField()
    feed = serializers.IntegerField(allow_null=True)
    as_of_seq = serializers.IntegerField(allow_null=True, help_text="Continue delta pulls after this seq.")
    count = serializers.IntegerField()
    entries = SnapshotEntrySerializer(many=True)


class PublicKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    key_id = serializers.CharField()
    public_key_b64 = serializers.CharField(help_text="Raw 32-byte Ed25519 public key, base64.")
    public_key_pem = serializers.CharField()


class DeltaQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=2**62, default=0, help_text="Return entries with seq greater than this."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT, help_text=f"Page size, 1..{MAX_LIMIT}."
    )


def cache_seconds(now: dt.datetime | None = None) -> int:
    """Until the next daily sync (plus its grace period): nothing changes before then."""
    now = timezone.localtime(now)
    hour, minute = (int(p) for p in settings.REVOCATION_SYNC_TIME.split(":"))
    target = now.replace(hour=hour, minute=minute, second=0, microsecond=0) + SYNC_GRACE
    while target <= now:
        target += dt.timedelta(days=1)
    while target - now > dt.timedelta(days=1):
        target -= dt.timedelta(days=1)
    return max(60, int((target - now).total_seconds()))


def _cache_headers(response: HttpResponse, etag: str) -> HttpResponse:
    response["ETag"] = etag
    response["Cache-Control"] = f"private, max-age={cache_seconds()}, must-revalidate"
    response["Vary"] = "Authorization, Accept-Language"
    return response


def _not_modified(request: Request, etag: str) -> bool:
    header = request.headers.get("If-None-Match", "")
    return etag in {tag.strip() for tag in header.split(",")} or header.strip() == "*"


class _ProviderAPIView(APIView):
    authentication_classes = [ProviderAPIKeyAuthentication]
    permission_classes = [IsProviderClient]
    throttle_classes = [PerAPIKeyThrottle]

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        raise exceptions.Throttled(
            wait=wait,
            detail=_(
                "リクエストが多すぎます（APIキーごとの上限 %(rate)s）。しばらく待ってから再試行してください。"
            )
            % {"rate": settings.REVOCATION_API_RATE},
        )


_ERRORS = {
    400: OpenApiResponse(description="Bad query parameter (the message names it)."),
    401: OpenApiResponse(description="Missing, wrong or revoked API key."),
    403: OpenApiResponse(description="Call from outside the key's allowed networks."),
    429: OpenApiResponse(description="Rate limit of the API key exceeded; see Retry-After."),
}


class DeltaView(_ProviderAPIView):
    @extend_schema(
        operation_id="revocations_delta",
        tags=["revocations"],
        summary="Status changes of your card APs after a sequence number",
        parameters=[
            DeltaQuerySerializer,
            OpenApiParameter(
                "If-None-Match", str, OpenApiParameter.HEADER, description="ETag of a previous answer."
            ),
        ],
        responses={200: DeltaPageSerializer, 304: OpenApiResponse(description="Not modified"), **_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        query = DeltaQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        client: ProviderClient = request.user  # type: ignore[assignment]
        scope = selectors.scope_for(client.provider)
        etag = selectors.delta_etag(provider=client.provider, scope=scope, after=after, limit=limit)
        if _not_modified(request, etag):
            services.record_pull(provider=client.provider, key=client.key, kind="delta", last_seq=after)
            return _cache_headers(HttpResponse(status=304), etag)
        entries, has_more = selectors.entries_after(scope=scope, after=after, limit=limit)
        cursor = entries[-1]["seq"] if entries else after
        feed = selectors.last_applied_feed()
        services.record_pull(provider=client.provider, key=client.key, kind="delta", last_seq=cursor)
        body = {
            "entries": entries,
            "cursor": cursor,
            "next": cursor if has_more else None,
            "has_more": has_more,
            "feed": feed.number if feed else None,
        }
        return _cache_headers(Response(body), etag)


class SnapshotView(_ProviderAPIView):
    @extend_schema(
        operation_id="revocations_snapshot",
        tags=["revocations"],
        summary="Signed full list of your suspended and revoked user numbers",
        description=(
            "The body's exact bytes are signed with the service's Ed25519 key: header "
            "`X-Signature` (base64) and `X-Signature-Key-Id`; verify with /api/v1/revocations/public-key/."
        ),
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER)],
        responses={200: SnapshotSerializer, 304: OpenApiResponse(description="Not modified"), **_ERRORS},
    )
    def get(self, request: Request) -> HttpResponse:
        client: ProviderClient = request.user  # type: ignore[assignment]
        scope = selectors.scope_for(client.provider)
        feed = selectors.last_applied_feed()
        as_of = selectors.last_visible_seq(scope)
        entries = selectors.snapshot(scope=scope)
        payload = {
            "provider": client.provider.name,
            "feed": feed.number if feed else None,
            "as_of_seq": as_of,
            "count": len(entries),
            "entries": entries,
        }
        # The ETag covers the content, not the generation time, so an unchanged list gives 304.
        content_tag = (
            '"' + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32] + '"'
        )
        services.record_pull(provider=client.provider, key=client.key, kind="snapshot", last_seq=as_of)
        if _not_modified(request, content_tag):
            return _cache_headers(HttpResponse(status=304), content_tag)
        payload["generated_at"] = timezone.localtime().isoformat()
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        response = HttpResponse(body, content_type="application/json")
        response["X-Signature"] = keys.sign(body)
        response["X-Signature-Key-Id"] = keys.key_id(keys.signing_public_key())
        return _cache_headers(response, content_tag)


class PublicKeyView(APIView):
    """Public: anyone may fetch the key that verifies snapshots."""

    authentication_classes: list[Any] = []
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        operation_id="revocations_public_key",
        tags=["revocations"],
        summary="Ed25519 public key that verifies snapshot signatures",
        responses={200: PublicKeySerializer},
        auth=[],
    )
    def get(self, request: Request) -> Response:
        from cryptography.hazmat.primitives import serialization

        public = keys.signing_public_key()
        pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        response = Response(
            {
                "algorithm": "Ed25519",
                "key_id": keys.key_id(public),
                "public_key_b64": keys.feedfile.public_key_b64(public),
                "public_key_pem": pem.decode(),
            }
        )
        response["Cache-Control"] = "public, max-age=3600"
        return response
