"""Keys and PINs a card job needs, all from the key store (R9.4): the area SDs' per-card SCP03
keys (diversified from the region master keys), card AP keys, and system-fixed PINs."""

from __future__ import annotations

from cardap import services as registry
from cardap.keystore import get_keystore
from cardap.models import CardAP
from gpcard.aid import AID
from gpcard.scp03 import StaticKeys

KEY_VERSION = 0x30


def card_keys(sd: AID, iin: bytes, cin: bytes) -> StaticKeys:
    return get_keystore().card_keys(sd, KEY_VERSION, iin, cin)


def system_fixed_pin(card_ap: CardAP) -> str:
    """The PIN every card carrying ``card_ap`` gets when its PIN is system-fixed: the registry's
    own (the one the access key packages carry to the provider's readers), never a second
    derivation of it."""
    pin = registry.system_fixed_pin(card_ap)
    assert pin is not None, "only an AP whose PIN source is the system has a system-fixed PIN"
    return pin


def ap_key(card_ap: CardAP, version: int | None) -> bytes | None:
    if version is None:
        return None
    return registry.key_version(card_ap, version)


def current_ap_key_version(card_ap: CardAP) -> int | None:
    found = registry.current_key(card_ap)
    return found[0] if found is not None else None
