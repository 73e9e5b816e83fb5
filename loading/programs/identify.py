"""``identify``: the card's identity through the card manager, in one round trip. The smallest
real conversation (the relay's own tests and benchmark use it)."""

from __future__ import annotations

from gpcard import gp
from gpcard.aid import ISD_AID
from gpcard.conversation import Batch, Conversation, expect_success
from loading.engine import Context, program


@program("identify")
def identify(ctx: Context) -> Conversation:
    commands = (gp.select(ISD_AID), gp.get_data(gp.TAG_IIN), gp.get_data(gp.TAG_CIN))
    batch = Batch(tuple(c.encode() for c in commands), "identify")
    _select, iin, cin = expect_success(batch, (yield batch))
    return {"iin": gp.parse_iin(iin.data).hex(), "cin": gp.parse_cin(cin.data).hex()}
