"""``GET /api/v1/installations/?after=CURSOR`` (R7): the loads and deletions of a provider's card
APs, for its business system to link user numbers. Same API keys, ETags and rate limit as the
revocation feed; the card is named by a reference stable per provider, never by its CIN."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse, HttpResponseBase
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request

from cardap.pull_api import ERRORS, IF_NONE_MATCH, CursorQuerySerializer, ProviderFeedView, strong_etag
from loading.models import InstallationEvent


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


class QuerySerializer(CursorQuerySerializer):
    pass


class InstallationsView(ProviderFeedView):
    bucket = "installations"

    def provider_state(self) -> tuple[str, list[Any]]:
        table = InstallationEvent._meta.db_table
        return f"SELECT MAX(id) AS last_event FROM {table} WHERE provider_id = {{provider}}", []  # noqa: S608

    @extend_schema(
        operation_id="installations_list",
        tags=["installations"],
        summary="Loads and deletions of your card APs after a sequence number",
        parameters=[QuerySerializer, IF_NONE_MATCH],
        responses={200: PageSerializer, 304: OpenApiResponse(description="Not modified"), **ERRORS},
    )
    def get(self, request: Request) -> HttpResponseBase:
        after, limit = self.cursor(request)
        client = self.client(request)
        provider = client.provider
        events = InstallationEvent.objects.filter(provider=provider)
        # The provider's last event is the feed's high-water mark: written with the event, read
        # with the API key (provider_state) by one probe of the (provider, id) index.
        (last,) = client.state
        etag = strong_etag(f"{provider.pk}:{after}:{limit}:{last}")
        if self.not_modified(request, etag):
            return self.not_modified_response(etag)
        rows = list(
            events.filter(id__gt=after)
            .order_by("id")
            .values_list("id", "aid", "user_number", "card_ref", "event", "at")[: limit + 1]
        )
        has_more = len(rows) > limit
        rows = rows[:limit]
        tz = timezone.get_current_timezone()
        entries = [
            {
                "seq": seq,
                "aid": aid,
                "user_number": number,
                "card_ref": ref,
                "state": state,
                "at": at.astimezone(tz),
            }
            for seq, aid, number, ref, state, at in rows
        ]
        cursor = rows[-1][0] if rows else after
        body = {
            "entries": entries,
            "cursor": cursor,
            "next": cursor if has_more else None,
            "has_more": has_more,
        }
        return self.tagged(HttpResponse(orjson.dumps(body), content_type="application/json"), etag)
