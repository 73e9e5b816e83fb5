"""Card programs used only by the relay tests, registered in the test server process too
(tests/relay/asgi.py imports this module)."""

from __future__ import annotations

from gpcard import gp
from gpcard.aid import ISD_AID
from gpcard.conversation import Batch, Conversation, expect_success
from loading.engine import Context, program

MISSING_AID = bytes.fromhex("D392FFFFFFFF0001")


@program("test-two-scripts")
def two_scripts(ctx: Context) -> Conversation:
    """Two round trips; the second depends on the first having run (the card manager selected)."""
    first = Batch((gp.select(ISD_AID).encode(), gp.get_data(gp.TAG_CIN).encode()), "select-cin")
    _sel, cin1 = expect_success(first, (yield first))
    second = Batch((gp.get_data(gp.TAG_IIN).encode(), gp.get_data(gp.TAG_CIN).encode()), "iin-cin")
    iin, cin2 = expect_success(second, (yield second))
    return {
        "cin_first": gp.parse_cin(cin1.data).hex(),
        "cin_second": gp.parse_cin(cin2.data).hex(),
        "iin": gp.parse_iin(iin.data).hex(),
    }


@program("test-stop-at-sw")
def stop_at_sw(ctx: Context) -> Conversation:
    """Select the card manager, select an AID the card does not have (6A82), read the CIN: the
    agent must stop after the second command and never send the third."""
    batch = Batch(
        (gp.select(ISD_AID).encode(), gp.select(MISSING_AID).encode(), gp.get_data(gp.TAG_CIN).encode()),
        "stop",
    )
    raw = yield batch
    return {"answered": len(raw), "sws": [r[-2:].hex().upper() for r in raw]}
