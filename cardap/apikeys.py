"""Issuing, checking and revoking provider API keys, and the DRF authentication that uses them.

Keys are made and stored like terminal credentials (operators.tokens).
"""
from __future__ import annotations

import functools
import hmac
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from cardap.models import Provider, ProviderAPIKey
from operators import tokens
from operators.audit import client_ip, record

KEY_PREFIX = "cak_"


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
    *,
    provider: Provider,
    name: str,
    created_by: str = "",
    allowed_networks: list[str] | None = None,
    request: HttpRequest | None = None,
) -> tuple[ProviderAPIKey, str]:
    """Create a key (audited); returns the row and the token, which is never shown again."""
    prefix, token = tokens.new_token(KEY_PREFIX)
    key = ProviderAPIKey.objects.create(
        provider=provider,
        name=name,
        prefix=prefix,
        key_hash=tokens.digest(token),
        allowed_networks=validate_networks(allowed_networks or []),
        created_by=created_by,
    )
    record(
        action="apikey.issue",
        request=request,
        actor=created_by or None,
        provider_id=provider.pk,
        target=f"apikey {key.prefix}",
        detail={"name": key.name, "allowed_networks": key.allowed_networks},
    )
    return key, token


@transaction.atomic
def revoke_key(*, key: ProviderAPIKey, request: HttpRequest | None = None) -> None:
    """Revoke a key at once (audited)."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    record(
        action="apikey.revoke",
        request=request,
        provider_id=key.provider_id,
        target=f"apikey {key.prefix}",
        detail={"name": key.name},
    )


def _columns(model: type[Any]) -> list[Any]:
    return list(model._meta.concrete_fields)


def _instance(model: type[Any], fields: list[Any], values: tuple[Any, ...]) -> Any:
    """A model row from raw column values, with each field's database converter applied (the
    ORM's work for a SELECT, without its query compile)."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        converter = getattr(field, "from_db_value", None)
        converted.append(converter(value, None, connection) if converter and value is not None else value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


@functools.cache
def _key_lookup_sql() -> tuple[str, str, list[Any], list[Any]]:
    key_fields, provider_fields = _columns(ProviderAPIKey), _columns(Provider)
    columns = [f"k.{f.column}" for f in key_fields] + [f"p.{f.column}" for f in provider_fields]
    select = f"SELECT {', '.join(columns)}"
    joins = (
        f" FROM {ProviderAPIKey._meta.db_table} k "  # noqa: S608 (names only)
        f"JOIN {Provider._meta.db_table} p ON p.id = k.provider_id"
    )
    return select, joins, key_fields, provider_fields


# What a provider feed reads with the key, in the same statement: a query giving one row over
# the key's provider, whose id it names as {provider} (the feed's high-water mark and the
# provider's scope, say). Given by the feed being called (ProviderFeedView.provider_state), so
# this module knows nothing of the feeds' tables.
ProviderState = tuple[str, list[Any]]


def find_key(token: str) -> ProviderAPIKey | None:
    """The key a token names, with its provider, or None. One plain statement (the API key is
    looked up on every API call; the ORM's compile of it cost more than running it)."""
    return find_key_with_state(token, None)[0]


def find_key_with_state(
    token: str, state: ProviderState | None
) -> tuple[ProviderAPIKey | None, tuple[Any, ...]]:
    """find_key, and the row of ``state`` for the key's provider read in the same statement
    (empty without a state). The state is read before the token's hash is compared: the caller
    must use it only once the key is accepted (it is returned with None otherwise)."""
    if not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        return None, ()
    prefix = token[len(KEY_PREFIX) :].split("_", 1)[0]
    if not re.fullmatch(r"[0-9a-f]{8}", prefix):
        return None, ()  # never query with garbage (PostgreSQL refuses NUL bytes with an error)
    select, joins, key_fields, provider_fields = _key_lookup_sql()
    params: list[Any] = [prefix]
    if state is None:
        sql = f"{select}{joins} WHERE k.prefix = %s"
    else:
        state_sql, state_params = state
        lateral = state_sql.format(provider="k.provider_id")
        sql = f"{select}, st.*{joins} CROSS JOIN LATERAL ({lateral}) st WHERE k.prefix = %s"
        params = [*state_params, prefix]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None, ()
    key: ProviderAPIKey = _instance(ProviderAPIKey, key_fields, row[: len(key_fields)])
    if not hmac.compare_digest(key.key_hash, tokens.digest(token)):
        return None, ()
    split = len(key_fields) + len(provider_fields)
    key.provider = _instance(Provider, provider_fields, row[len(key_fields) : split])
    return key, tuple(row[split:])


def address_allowed(key: ProviderAPIKey, address: str | None) -> bool:
    if not key.allowed_networks:
        return True
    if not address:
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(net) for net in key.allowed_networks)


@dataclass(frozen=True)
class ProviderClient:
    """The authenticated caller of an API call: a provider's business system
    (operators.policy.principal_of turns it into the policy's principal)."""

    principal_kind: ClassVar[str] = "api_client"
    provider: Provider
    key: ProviderAPIKey
    # The row of the feed's provider_state, read with the key (empty when the feed has none).
    state: tuple[Any, ...] = ()
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
        # The feed called may read its own state with the key, in the same statement.
        view = (getattr(request, "parser_context", None) or {}).get("view")
        provider_state = getattr(view, "provider_state", None)
        key, state = find_key_with_state(parts[1], provider_state() if provider_state else None)
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
        return ProviderClient(provider=key.provider, key=key, state=state), key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
