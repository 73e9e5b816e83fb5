"""Keys and PINs a card job needs, all from the key store (R9.4): the area SDs' per-card SCP03
keys (diversified from the region master keys), card AP keys, and system-fixed PINs."""

from __future__ import annotations

import hashlib
import hmac

from cardap import services as registry
from cardap.keystore import get_keystore
from cardap.models import CardAP
from gpcard.aid import AID
from gpcard.keystore import KeyNotFoundError
from gpcard.scp03 import StaticKeys

KEY_VERSION = 0x30


def card_keys(sd: AID, iin: bytes, cin: bytes) -> StaticKeys:
    return get_keystore().card_keys(sd, KEY_VERSION, iin, cin)


def system_pin_name(card_ap: CardAP) -> str:
    return f"card_ap:{card_ap.pk}:system-pin"


def system_fixed_pin(card_ap: CardAP) -> str:
    """The PIN every card carrying ``card_ap`` gets when its PIN is system-fixed: derived from a
    secret kept in the key store (created on first use; version 1 always, so two processes
    creating it at once still agree), as many digits as the AP's minimum PIN length."""
    store = get_keystore()
    name = system_pin_name(card_ap)
    try:
        _v, secret = store.ap_key(name, 1)
    except KeyNotFoundError:
        store.rotate_ap_key(name)
        _v, secret = store.ap_key(name, 1)
    digest = hmac.new(secret, b"system-fixed PIN", hashlib.sha256).digest()
    digits = str(int.from_bytes(digest, "big"))
    return digits[-card_ap.pin_min_length :]


def ap_key(card_ap: CardAP, version: int | None) -> bytes | None:
    if version is None:
        return None
    return registry.key_version(card_ap, version)


def current_ap_key_version(card_ap: CardAP) -> int | None:
    found = registry.current_key(card_ap)
    return found[0] if found is not None else None
