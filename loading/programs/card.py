"""``card-read`` and ``card-change``: the card jobs' conversations (loading.jobs drives them).
Keys, PINs and descriptions come from the key store and the registry when the batch is built;
the conversation's stored parameters never hold a PIN or a key."""

from __future__ import annotations

from typing import Any

from cardap.models import CardAP
from gpcard import apdesc, operations
from gpcard.aid import custom_module_aid
from gpcard.conversation import Conversation
from loading import cardkeys
from loading.engine import Context, program


@program("card-read")
def card_read(ctx: Context) -> Conversation:
    content = yield from operations.read_card(
        keys=cardkeys.card_keys, challenge=ctx.host_challenge, listing=bool(ctx.params.get("listing", True))
    )
    return content.to_json()


def pin_secret_name(card_ap_id: int) -> str:
    return f"pin:{card_ap_id}"


def _install(ctx: Context, spec: dict[str, Any]) -> operations.Action:
    ap = CardAP.objects.get(pk=spec["card_ap"])
    assert ap.aid and ap.serial is not None
    area = "local" if ap.area == CardAP.Area.LOCAL else "extended"
    pin: str | None = None
    if ap.pin_source == CardAP.PinSource.HOLDER:
        pin = ctx.secret(pin_secret_name(ap.pk))
    elif ap.pin_source == CardAP.PinSource.SYSTEM:
        pin = cardkeys.system_fixed_pin(ap)
    key = cardkeys.ap_key(ap, spec.get("key_version"))
    if ap.is_custom:
        _sd, signature, block = apdesc.parse_load_file(bytes(ap.load_file or b""))
        desc = apdesc.CardAPDescription.decode(block)
        assert ap.load_file_aid
        return operations.install_custom_action(
            ref=spec["ref"],
            area=area,
            instance=ap.aid,
            load_file=ap.load_file_aid,
            module=custom_module_aid(operations.AREA_NAMES[area], ap.serial).hex(),
            data_block=block,
            signature=signature,
            dgis=operations.personalisation_dgis(desc, spec["user_number"], pin=pin, ap_key=key),
        )
    desc = apdesc.CardAPDescription.decode(bytes.fromhex(ap.description_hex))
    return operations.install_standard_action(
        ref=spec["ref"],
        area=area,
        instance=ap.aid,
        description=desc,
        dgis=operations.personalisation_dgis(desc, spec["user_number"], pin=pin, ap_key=key),
    )


def build_actions(ctx: Context) -> list[operations.Action]:
    actions = []
    for spec in ctx.params["actions"]:
        if spec["op"] == "install":
            actions.append(_install(ctx, spec))
        else:
            actions.append(
                operations.delete_action(
                    ref=spec["ref"],
                    area=spec["area"],
                    instance=spec["instance"],
                    load_file=spec.get("load_file") or None,
                    may_be_absent=bool(spec.get("may_be_absent")),
                )
            )
    return actions


@program("card-change")
def card_change(ctx: Context) -> Conversation:
    content = operations.CardContent.from_json(ctx.params["content"])
    outcome = yield from operations.change_card(
        content=content,
        actions=build_actions(ctx),
        keys=cardkeys.card_keys,
        challenge=ctx.host_challenge,
        label=str(ctx.params.get("label", "change")),
    )
    return outcome
