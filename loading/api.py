"""``GET /api/v1/installations/?after=CURSOR`` (R7): the loads and deletions of a provider's card
APs, for its business system to link user numbers. Same API keys, ETags and rate limit as the
revocation feed; the card is named by a reference stable per provider, never by its CIN."""

from __future__ import annotations

import hashlib
from typing import Any, NoReturn

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, throttling
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cardap.apikeys import ProviderAPIKeyAuthentication, ProviderClient
from loading.models import InstallationEvent
from operators.policy import Principal, PrincipalPermission

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000


IsProviderClient = PrincipalPermission.of(Principal.API_CLIENT)  # the one access policy


class PerAPIKeyThrottle(throttling.SimpleRateThrottle):
    """One bucket per API key (the revocation feed's rate, REVOCATION_API_RATE)."""

    scope = "installations"

    def get_rate(self) -> str:
        return str(settings.REVOCATION_API_RATE)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        user = request.user
        return f"throttle_installations_{user.key.prefix}" if isinstance(user, ProviderClient) else None


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField(help_text="Strictly increasing; pull with ?after=<seq>.")
    aid = serializers.CharField(help_text="AID of the card AP (hex).")
    user_number = serializers.CharField(help_text="The user number written into the card AP.")
    card_ref = serializers.CharField(
        help_text="Card reference: stable for your provider, not the card's CIN."
    )
    state = serializers.ChoiceField(choices=["installed", "deleted"])
    at = serializers.DateTimeField(help_text="When the card was changed (Japan time).")


class PageSerializer(serializers.Serializer):
    entries = EventSerializer(many=True)
    cursor = serializers.IntegerField(help_text="Pass as ?after= next time (the last seq seen).")
    next = serializers.IntegerField(allow_null=True, help_text="Cursor of the next page, null when none.")
    has_more = serializers.BooleanField()


class QuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0, max_value=2**62, default=0, help_text="Entries after this seq."
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT, help_text=f"Page size, 1..{MAX_LIMIT}."
    )


class InstallationsView(APIView):
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

    @extend_schema(
        operation_id="installations_list",
        tags=["installations"],
        summary="Loads and deletions of your card APs after a sequence number",
        parameters=[
            QuerySerializer,
            OpenApiParameter(
                "If-None-Match", str, OpenApiParameter.HEADER, description="ETag of a previous answer."
            ),
        ],
        responses={
            200: PageSerializer,
            304: OpenApiResponse(description="Not modified"),
            400: OpenApiResponse(description="Bad query parameter (the message names it)."),
            401: OpenApiResponse(description="Missing, wrong or revoked API key."),
            429: OpenApiResponse(description="Rate limit of the API key exceeded; see Retry-After."),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        query = QuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        client: ProviderClient = request.user  # type: ignore[assignment]
        qs = InstallationEvent.objects.filter(provider=client.provider, id__gt=after).order_by("id")
        last = (
            InstallationEvent.objects.filter(provider=client.provider)
            .order_by("-id")
            .values_list("id", flat=True)
            .first()
        )
        etag = (
            '"'
            + hashlib.sha256(f"{client.provider.pk}:{after}:{limit}:{last}".encode()).hexdigest()[:32]
            + '"'
        )
        header = request.headers.get("If-None-Match", "")
        if etag in {t.strip() for t in header.split(",")}:
            return self._headers(HttpResponse(status=304), etag)
        rows = list(qs[: limit + 1])
        has_more = len(rows) > limit
        rows = rows[:limit]
        entries = [
            {
                "seq": e.pk,
                "aid": e.aid,
                "user_number": e.user_number,
                "card_ref": e.card_ref,
                "state": e.event,
                "at": timezone.localtime(e.at).isoformat(),
            }
            for e in rows
        ]
        cursor = rows[-1].pk if rows else after
        body = {
            "entries": entries,
            "cursor": cursor,
            "next": cursor if has_more else None,
            "has_more": has_more,
        }
        return self._headers(Response(body), etag)

    @staticmethod
    def _headers(response: HttpResponse, etag: str) -> HttpResponse:
        response["ETag"] = etag
        response["Cache-Control"] = "private, no-cache"
        response["Vary"] = "Authorization, Accept-Language"
        return response
