"""Manufacturing a card AP on approval (R3.2, R3.3): from the request to the bytes the card gets.

Standard types A, C and D use gpcard's predefined descriptions; a custom AP's description comes
from its input file, and its load file is signed with the J-LIS DAP key. All encoding is gpcard's
(the host protocol library); this module only maps registry records onto it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cardap import custom_input
from cardap.models import CardAP

AREA_CODES = {CardAP.Area.LOCAL: "local", CardAP.Area.EXTENDED: "extended"}


@dataclass(frozen=True)
class Product:
    description: bytes  # the card AP description TLV (A0 …)
    load_file: bytes | None  # custom APs: the signed load file (E2 … ‖ C4 …)
    memory_cost: int
    sha256: str  # of the load file data block (the description), hex
    dap_demo_key: bool
    needs_key: bool  # the AP has a mutual-authentication / secure-messaging rule


def aids(area: str, serial: int) -> tuple[str, str]:
    """(instance AID, custom load file AID), upper-case hex, for an allocated serial."""
    from gpcard import apdesc

    return apdesc.instance_aid(area, serial).hex().upper(), apdesc.load_file_aid(area, serial).hex().upper()


def area_quota(area: str) -> int:
    """The default non-volatile quota of the area SD (card-protocol.md, "Memory")."""
    return 8192 if area == CardAP.Area.LOCAL else 16384


def build_description(ap: CardAP, spec: custom_input.CustomAPSpec | None) -> object:
    """The gpcard description object of a request (not yet encoded)."""
    from gpcard import apdesc

    raise NotImplementedError(apdesc)


def estimated_cost(ap: CardAP) -> int | None:
    """Memory the AP will take on the card, or None when the request is not valid yet."""
    return None


def manufacture(ap: CardAP, spec: custom_input.CustomAPSpec | None) -> Product:
    description = b""
    return Product(description, None, 0, hashlib.sha256(description).hexdigest(), False, False)
