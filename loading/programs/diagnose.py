"""``diagnose``: the fault diagnosis probe (gpcard.diagnosis) over the engine, with the card's
keys from the key store and the card APs the registry believes are on this card."""

from __future__ import annotations

from collections.abc import Sequence

from gpcard.aid import AID, INSTANCE_PREFIX
from gpcard.conversation import Conversation
from gpcard.diagnosis import ApLookup, ProbePlan, probe
from gpcard.scp03 import StaticKeys
from loading.engine import Context, program

KEY_VERSION = 0x30  # the key version the bureau personalises (docs/card-protocol.md, "Keys")


def card_keys(sd: AID, iin: bytes, cin: bytes) -> StaticKeys:
    """The card's SCP03 keys for ``sd``; KeyNotFoundError (a LookupError) when none is stored."""
    from cardap.keystore import get_keystore

    return get_keystore().card_keys(sd, KEY_VERSION, iin, cin)


def card_aps_on(provider_id: int) -> ApLookup:
    """The provider's card APs recorded as on the card (expected) and all it has (known)."""

    def lookup(cin: bytes) -> tuple[Sequence[AID], Sequence[AID]]:
        from cardap.models import CardAPInstallation
        from operators.policy import card_aps_loadable_by

        mine = card_aps_loadable_by(provider_id).filter(aid__istartswith=INSTANCE_PREFIX.hex())
        known = sorted(AID.from_hex(a) for a in mine.values_list("aid", flat=True) if a)
        installed = CardAPInstallation.objects.filter(
            card_id__in={cin.hex().upper(), cin.hex().lower()}, card_ap__in=mine
        ).exclude(state=CardAPInstallation.State.DELETED)
        expected = sorted({AID.from_hex(a) for a in installed.values_list("card_ap__aid", flat=True) if a})
        return expected, known

    return lookup


@program("diagnose")
def diagnose(ctx: Context) -> Conversation:
    plan = ProbePlan.from_params(ctx.params)
    provider_id = ctx.params.get("provider_id")
    return (
        yield from probe(
            plan,
            keys=card_keys,
            host_challenge=ctx.host_challenge,
            card_aps=card_aps_on(int(provider_id)) if provider_id else None,
        )
    )
