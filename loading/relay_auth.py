"""Who is calling the relay: the one place that turns an agent's ``Authorization`` header into
its Terminal (``Authorization: Terminal <credential>``, the terminal's own credential, checked on
every request so a revoked or rotated credential stops at once)."""

from __future__ import annotations

from django.http import HttpRequest

from operators.models import Terminal
from operators.services import TOKEN_PREFIX, authenticate_terminal

KEYWORD = "Terminal"


def credential_from(request: HttpRequest) -> str:
    """The credential in the request's Authorization header ('' when there is none)."""
    parts = request.headers.get("Authorization", "").split()
    if len(parts) != 2 or parts[0] != KEYWORD:
        return ""
    return parts[1]


def credential_id(credential: str) -> str:
    """The credential's public id (the part after the prefix), for the audit log; never the
    secret part."""
    if not credential.startswith(TOKEN_PREFIX):
        return ""
    return credential[len(TOKEN_PREFIX) :].partition("_")[0][:16]


def terminal_for(credential: str) -> Terminal | None:
    """The active terminal holding ``credential``, or None."""
    return authenticate_terminal(credential, administrator=False) if credential else None
