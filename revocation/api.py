"""The providers' revocation feed over REST (R6): delta pulls by sequence number, a signed
snapshot for reconciliation, and the public key that verifies it. Authenticated by API key."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Generator, Iterator
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connection, transaction
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from cardap.apikeys import ProviderClient
from cardap.pull_api import ERRORS, IF_NONE_MATCH, CursorQuerySerializer, ProviderFeedView
from revocation import keys, selectors, services

SYNC_GRACE = dt.timedelta(hours=1)  # the sync normally finishes well within this after its start


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
    feed = serializers.IntegerField(allow_null=True)
    as_of_seq = serializers.IntegerField(allow_null=True, help_text="Continue delta pulls after this seq.")
    entries = SnapshotEntrySerializer(many=True)
    count = serializers.IntegerField(help_text="Number of entries (written after them: the body streams).")


class SnapshotSignatureSerializer(serializers.Serializer):
    algorithm = serializers.CharField(help_text="Always Ed25519.")
    key_id = serializers.CharField(help_text="Identifies the key at /api/v1/revocations/public-key/.")
    manifest = serializers.CharField(
        help_text='The signed text: {"format","provider","sha256","size","etag"} of the snapshot body.'
    )
    signature = serializers.CharField(help_text="Base64 Ed25519 signature of the manifest's UTF-8 bytes.")


class PublicKeySerializer(serializers.Serializer):
    algorithm = serializers.CharField()
    key_id = serializers.CharField()
    public_key_b64 = serializers.CharField(help_text="Raw 32-byte Ed25519 public key, base64.")
    public_key_pem = serializers.CharField()


class DeltaQuerySerializer(CursorQuerySerializer):
    pass


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


class _ProviderAPIView(ProviderFeedView):
    bucket = "revocations"

    def cache_control(self) -> str:
        return f"private, max-age={cache_seconds()}, must-revalidate"


class DeltaView(_ProviderAPIView):
    def provider_state(self) -> tuple[str, list[Any]]:
        return selectors.delta_state_sql()

    @extend_schema(
        operation_id="revocations_delta",
        tags=["revocations"],
        summary="Status changes of your card APs after a sequence number",
        parameters=[
            DeltaQuerySerializer,
            IF_NONE_MATCH,
        ],
        responses={200: DeltaPageSerializer, 304: OpenApiResponse(description="Not modified"), **ERRORS},
    )
    def get(self, request: Request) -> HttpResponseBase:
        after, limit = self.cursor(request)
        client = self.client(request)
        # Read with the API key, in its statement: the last applied feed and the scope.
        feed_id, scope = selectors.delta_state(client.state)
        etag = selectors.delta_etag(
            provider=client.provider, scope=scope, after=after, limit=limit, feed_id=feed_id
        )
        if self.not_modified(request, etag):
            services.record_pull(provider=client.provider, key=client.key, kind="delta", last_seq=after)
            return self.not_modified_response(etag)
        page = selectors.delta_page(scope=scope, after=after, limit=limit)
        feed = selectors.last_applied_feed()
        services.record_pull(provider=client.provider, key=client.key, kind="delta", last_seq=page.cursor)
        # The entries arrive as JSON text from the selector; the rest is added around them.
        body = b"".join(
            (
                b'{"entries":',
                page.entries_json,
                orjson.dumps(
                    {
                        "cursor": page.cursor,
                        "next": page.cursor if page.has_more else None,
                        "has_more": page.has_more,
                        "feed": feed.number if feed else None,
                    }
                ).replace(b"{", b",", 1),
            )
        )
        return self.tagged(HttpResponse(body, content_type="application/json"), etag)


SIGNATURE_FORMAT = "cardap-revocation-snapshot-signature/1"


def _snapshot_body(client: ProviderClient) -> Generator[bytes, None, None]:
    """The snapshot's bytes, streamed: the same content gives the same bytes (no generation
    time inside), so the detached signature, computed by streaming it once more, covers exactly
    what a client received. One read-only transaction, so the header fields, the entries and the
    count are one consistent state even if a feed is applied meanwhile."""
    own_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and own_transaction:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        scope = selectors.scope_for(client.provider)
        feed = selectors.last_applied_feed()
        head = orjson.dumps(
            {
                "provider": client.provider.name,
                "feed": feed.number if feed else None,
                "as_of_seq": selectors.last_visible_seq(scope),
            }
        )
        yield head[:-1] + b',"entries":['
        count = 0
        for chunk in selectors.snapshot_chunks(scope=scope):
            yield (b"," if count else b"") + b",".join(chunk)
            count += len(chunk)
        yield b'],"count":' + str(count).encode() + b"}"


def _next_part(body: Iterator[bytes]) -> bytes | None:
    return next(body, None)


async def streamed_async(body: Generator[bytes, None, None]) -> AsyncIterator[bytes]:
    """The body for an ASGI server, one part at a time. Django consumes a synchronous iterator
    under ASGI by reading it whole into a list first (memory grows with the snapshot), so the
    parts are pulled here one by one, each in the request's own thread: the thread the view ran
    in, whose database connection holds the snapshot's transaction and server-side cursor. If the
    client goes away, the generator is closed in that thread too (its transaction ends)."""
    step = sync_to_async(_next_part, thread_sensitive=True)
    try:
        while True:
            part = await step(body)
            if part is None:
                return
            yield part
    finally:
        await sync_to_async(body.close, thread_sensitive=True)()


def _digest(client: ProviderClient) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for part in _snapshot_body(client):
        digest.update(part)
        size += len(part)
    return digest.hexdigest(), size


def _snapshot_etag(sha256: str) -> str:
    return f'"{sha256[:32]}"'


class SnapshotView(_ProviderAPIView):
    @extend_schema(
        operation_id="revocations_snapshot",
        tags=["revocations"],
        summary="Full list of your suspended and revoked user numbers (streamed; signed beside it)",
        description=(
            "Streamed, so any size is served in flat memory. The same content always gives the same "
            "bytes. Its detached signature is at /api/v1/revocations/snapshot/signature/: an Ed25519 "
            "signature of a manifest holding the body's SHA-256 and size; verify it with "
            "/api/v1/revocations/public-key/, then compare the SHA-256 of the body you received. "
            "With If-None-Match (the manifest's etag) the answer is 304 while the content is unchanged."
        ),
        parameters=[OpenApiParameter("If-None-Match", str, OpenApiParameter.HEADER)],
        responses={200: SnapshotSerializer, 304: OpenApiResponse(description="Not modified"), **ERRORS},
    )
    def get(self, request: Request) -> HttpResponseBase:
        client = self.client(request)
        as_of = selectors.last_visible_seq(selectors.scope_for(client.provider))
        services.record_pull(provider=client.provider, key=client.key, kind="snapshot", last_seq=as_of)
        if request.headers.get("If-None-Match"):
            sha256, _size = _digest(client)
            if self.not_modified(request, _snapshot_etag(sha256)):
                return self.not_modified_response(_snapshot_etag(sha256))
        body = _snapshot_body(client)
        streamed = streamed_async(body) if isinstance(request._request, ASGIRequest) else body
        response = StreamingHttpResponse(streamed, content_type="application/json")
        self.tagged(response, None)
        response["Link"] = f'<{reverse("revocation:api-snapshot-signature")}>; rel="signature"'
        return response


class SnapshotSignatureView(_ProviderAPIView):
    @extend_schema(
        operation_id="revocations_snapshot_signature",
        tags=["revocations"],
        summary="Detached Ed25519 signature of your current snapshot",
        description=(
            "`signature` (base64) signs the UTF-8 bytes of `manifest` exactly as given (a JSON text "
            "naming the format, provider, the snapshot body's SHA-256 and size, and its etag). "
            "A snapshot body whose SHA-256 differs was of another state: fetch both again."
        ),
        responses={200: SnapshotSignatureSerializer, **ERRORS},
    )
    def get(self, request: Request) -> HttpResponseBase:
        client = self.client(request)
        sha256, size = _digest(client)
        manifest = json.dumps(
            {
                "format": SIGNATURE_FORMAT,
                "provider": client.provider.name,
                "sha256": sha256,
                "size": size,
                "etag": _snapshot_etag(sha256),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        )
        public = keys.signing_public_key()
        body = {
            "algorithm": "Ed25519",
            "key_id": keys.key_id(public),
            "manifest": manifest,
            "signature": keys.sign(manifest.encode()),
        }
        response = HttpResponse(orjson.dumps(body), content_type="application/json")
        return self.tagged(response, _snapshot_etag(sha256))


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
