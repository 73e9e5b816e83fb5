"""Issuing, checking and revoking provider API keys, and the DRF authentication that uses them.

Keys are 256-bit random tokens, so a single SHA-256 is enough to store them (a slow password
hash protects low-entropy secrets; it would only slow every API call here).
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from cardap.models import Provider, ProviderAPIKey
from operators.audit import client_ip

KEY_PREFIX = "cak_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def validate_networks(networks: list[str]) -> list[str]:
    """Normalise CIDR strings; raise ValueError naming the first bad one."""
    normalised = []
    for raw in networks:
        try:
            normalised.append(str(ipaddress.ip_network(raw.strip(), strict=False)))
        except ValueError:
            raise ValueError(f"not a network address: {raw!r}") from None
    return normalised


@transaction.atomic
def issue_key(
    *, provider: Provider, name: str, created_by: str = "", allowed_networks: list[str] | None = None
) -> tuple[ProviderAPIKey, str]:
    """Create a key; returns the row and the token, which is never shown again."""
    prefix = secrets.token_hex(4)
    token = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ProviderAPIKey.objects.create(
        provider=provider,
        name=name,
        prefix=prefix,
        key_hash=_digest(token),
        allowed_networks=validate_networks(allowed_networks or []),
        created_by=created_by,
    )
    return key, token


def revoke_key(*, key: ProviderAPIKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])


def find_key(token: str) -> ProviderAPIKey | None:
    if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        return None
    prefix = token[len(KEY_PREFIX) :].split("_", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{8}", prefix):
        return None  # never query with garbage (PostgreSQL refuses NUL bytes with an error)
    key = ProviderAPIKey.objects.select_related("provider").filter(prefix=prefix).first()
    if key is None or not hmac.compare_digest(key.key_hash, _digest(token)):
        return None
    return key


def address_allowed(key: ProviderAPIKey, address: str | None) -> bool:
    if not key.allowed_networks:
        return True
    if not address:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(net) for net in key.allowed_networks)


@dataclass(frozen=True)
class ProviderClient:
    """The authenticated principal of an API call: a provider's business system."""

    provider: Provider
    key: ProviderAPIKey
    is_authenticated: bool = True
    is_anonymous: bool = False

    @property
    def username(self) -> str:
        return f"api:{self.key.prefix}"

    @property
    def provider_id(self) -> int:
        return self.provider.pk


class ProviderAPIKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer cak_…`. Refuses revoked keys, keys of providers that are not live,
    and calls from outside the key's allowed networks, each with its own message."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ProviderClient, ProviderAPIKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0] != self.keyword:
            message = _("Authorization ヘッダーは「Bearer <APIキー>」の形式です。")
            raise exceptions.AuthenticationFailed(message)
        key = find_key(parts[1])
        if key is None:
            raise exceptions.AuthenticationFailed(_("APIキーが正しくありません。"))
        if not key.is_active:
            raise exceptions.AuthenticationFailed(_("このAPIキーは失効しています。"))
        if key.provider.status not in (Provider.Status.LIVE, Provider.Status.CONTRACTED):
            raise exceptions.AuthenticationFailed(_("サービス提供者が利用可能な状態ではありません。"))
        # The client's address, also behind the documented reverse proxy (TRUSTED_PROXY_COUNT).
        if not address_allowed(key, client_ip(request)):
            raise exceptions.PermissionDenied(_("この接続元からのAPIキー利用は許可されていません。"))
        now = timezone.now()
        if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
            ProviderAPIKey.objects.filter(pk=key.pk).update(last_used_at=now)
        return ProviderClient(provider=key.provider, key=key), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
