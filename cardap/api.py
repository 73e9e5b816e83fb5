"""Read-only REST API for providers' business systems: their card APs and AIDs (R7).

Authenticated by provider API key; every queryset is scoped to the key's provider (its own card
APs, and those it shares or uses as an affiliate).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, serializers

from cardap import selectors
from cardap.apikeys import ProviderAPIKeyAuthentication
from cardap.models import CardAP
from operators import policy


class ProviderAPIKeyScheme(OpenApiAuthenticationExtension):
    """Documents the provider API key (`Authorization: Bearer cak_…`) in the OpenAPI schema."""

    target_class = "cardap.apikeys.ProviderAPIKeyAuthentication"
    name = "providerApiKey"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Provider API key issued by J-LIS: `Authorization: Bearer cak_…`",
        }


class CardAPSerializer(serializers.ModelSerializer):
    relationship = serializers.SerializerMethodField(
        help_text="representative (applied for it and loads it), shared (co-provider, loads it) or "
        "affiliate (uses it, never loads)"
    )
    provider = serializers.CharField(
        source="provider.name", read_only=True, help_text="representative provider"
    )

    class Meta:
        model = CardAP
        fields = [
            "aid",
            "name",
            "type",
            "area",
            "status",
            "provider",
            "relationship",
            "pin_source",
            "user_number_length",
            "user_number_charset",
            "load_file_aid",
            "memory_cost",
            "sha256",
        ]
        read_only_fields = fields

    def get_relationship(self, obj: CardAP) -> str:
        return selectors.relationship(obj, self.context["request"].user.provider)


class _Scoped(generics.GenericAPIView):
    authentication_classes = [ProviderAPIKeyAuthentication]
    permission_classes = [policy.PrincipalPermission.of(policy.Principal.API_CLIENT)]
    serializer_class = CardAPSerializer
    lookup_field = "aid"

    def get_object(self) -> CardAP:
        """A card AP the caller may see; any other AID answers 404, audited like every refusal."""
        aid = str(self.kwargs[self.lookup_field])
        ap = self.get_queryset().filter(aid=aid).first()
        if ap is None:
            raise policy.not_found(self.request, reason="not_visible", aid=aid[:40])
        return ap

    def get_queryset(self) -> QuerySet[CardAP]:
        client = self.request.user  # a ProviderClient (ProviderAPIKeyAuthentication)
        return (
            policy.card_aps_visible_to(client.provider)  # type: ignore[union-attr,unused-ignore]
            .select_related("provider")
            .order_by("aid")
        )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="why the request was refused (Japanese or English)")


_REFUSALS = {
    401: OpenApiResponse(ErrorSerializer, description="no API key, or a wrong, revoked or unusable one"),
    403: OpenApiResponse(ErrorSerializer, description="the key may not be used from this address"),
}


@extend_schema_view(
    get=extend_schema(
        responses={
            200: CardAPSerializer(many=True),
            400: OpenApiResponse(description="limit or offset out of range (field: message list)"),
            **_REFUSALS,
        },
        summary="List your card APs",
        description="Approved (and retired) card APs of the calling provider, and those it shares or uses "
        "as an affiliate, with their AIDs.",
        tags=["card APs"],
    )
)
class CardAPList(_Scoped, generics.ListAPIView):
    pass


@extend_schema_view(
    get=extend_schema(
        responses={
            200: CardAPSerializer,
            404: OpenApiResponse(ErrorSerializer, description="no card AP of yours has this AID"),
            **_REFUSALS,
        },
        summary="One of your card APs, by AID",
        tags=["card APs"],
    )
)
class CardAPDetail(_Scoped, generics.RetrieveAPIView):
    pass
