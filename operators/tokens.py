"""Bearer secrets (terminal credentials, provider API keys): made and stored one way.

Tokens are 256-bit random strings, so a single SHA-256 is enough to store them (a slow password
hash protects low-entropy secrets; it would only slow every agent poll and API call)."""

from __future__ import annotations

import hashlib
import secrets


def new_token(kind: str) -> tuple[str, str]:
    """A fresh token `<kind><id>_<secret>` and its public 8-hex-digit id (shown in lists)."""
    prefix = secrets.token_hex(4)
    return prefix, f"{kind}{prefix}_{secrets.token_urlsafe(32)}"


def digest(token: str) -> str:
    """What is stored in place of the token (hex SHA-256)."""
    return hashlib.sha256(token.encode()).hexdigest()
