"""Card AP operations as plans, sent as one Amendment B script each through a simulated agent that
stops at the first unexpected status word (DESIGN.md "The relay")."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric import ec

from gpcard import gp, plans
from gpcard.aid import ISD_AID, LOCAL_AREA_SD_AID, Area, custom_module_aid, instance_aid, load_file_aid
from gpcard.apdesc import (
    AccessRule,
    APType,
    CardAPDescription,
    FileSpec,
    FileStructure,
    UserNumberLocation,
    build_load_file,
    dap_sign,
    load_file_contents,
)
from gpcard.apdu import ResponseAPDU
from gpcard.scp03 import SCP03Session, StaticKeys
from gpcard.script import encode_response_script, parse_command_script
from tests.gpcard.card_double import CardSCP03

KEY = bytes(range(16))


def open_pair() -> tuple[SCP03Session, CardSCP03]:
    card = CardSCP03(KEY, KEY)
    host = SCP03Session(StaticKeys.single(KEY), host_challenge=b"\x11" * 8)
    ea = host.authenticate(ResponseAPDU.parse(card.initialize_update(host.initialize_update().encode())))
    host.unwrap(card.external_authenticate(ea.encode()))
    return host, card


def agent(
    card: CardSCP03, script: bytes, fail_at: dict[int, bytes], log: list[tuple[int, int, bytes]]
) -> bytes:
    """Run the C-APDUs in order; stop after the first that does not answer 9000."""
    rapdus = []
    for cmd in parse_command_script(script):
        sw = fail_at.get(cmd.ins, b"\x90\x00")
        data, rapdu = card.command(cmd.encode(), b"", sw)
        log.append((cmd.ins, cmd.p1, data))
        rapdus.append(rapdu)
        if rapdu[-2:] != b"\x90\x00":
            break
    return encode_response_script(rapdus)


def custom_description() -> CardAPDescription:
    return CardAPDescription(
        APType.CUSTOM,
        (
            FileSpec(
                0x0001,
                FileStructure.TRANSPARENT,
                AccessRule.FREE,
                AccessRule.PERSONALISATION_ONLY,
                length=600,
            ),
        ),
        UserNumberLocation(0x0001, 0, 0, 10),
    )


def test_custom_ap_load_install_personalise_in_one_script() -> None:
    host, card = open_pair()
    block = build_load_file(custom_description())
    signature = dap_sign(block, ec.derive_private_key(7, ec.SECP256R1()))
    lf, inst = load_file_aid(Area.LOCAL, 42), instance_aid(Area.LOCAL, 42)
    dgis = gp.file_content_dgis(0x0001, 0, b"0123456789" * 60)
    plan = plans.install_custom_ap(
        load_file=lf,
        module=custom_module_aid(Area.LOCAL, 42),
        instance=inst,
        sd=LOCAL_AREA_SD_AID,
        data_block=block,
        signature=signature,
        dgis=dgis,
    )
    batch = plans.SecureBatch(host, plan)
    log: list[tuple[int, int, bytes]] = []
    responses = batch.results(agent(card, batch.script(), {}, log))
    assert len(responses) == len(plan) and plans.SecureBatch.first_failure(responses) is None
    ins = [i for i, _, _ in log]
    assert ins[0] == 0xE6 and 0xE8 in ins and ins[-1] == 0xE2 and ins.count(0xE2) >= 2
    # the card saw the hash of the data block and the whole load file, in order
    assert hashlib.sha256(block).digest() in log[0][2]
    assert b"".join(d for i, _, d in log if i == 0xE8) == load_file_contents(block, signature, ISD_AID)
    assert b"".join(d for i, _, d in log if i == 0xE2) == b"".join(dgis)


def test_agent_stopping_early_keeps_the_session_in_step() -> None:
    host, card = open_pair()
    type_c = CardAPDescription(
        APType.C,
        (
            FileSpec(
                1, FileStructure.TRANSPARENT, AccessRule.FREE, AccessRule.PERSONALISATION_ONLY, length=20
            ),
        ),
        UserNumberLocation(1, 0, 0, 10),
    )
    plan = plans.install_standard_ap(
        type_c, instance_aid(Area.LOCAL, 1), [gp.dgi_file_content(1, 0, 0, b"x" * 20)]
    )
    batch = plans.SecureBatch(host, plan)
    log: list[tuple[int, int, bytes]] = []
    responses = batch.results(agent(card, batch.script(), {0xE6: b"\x6a\x84"}, log))
    assert len(responses) == 1 and responses[0].sw == 0x6A84 and len(plan) == 3
    assert plans.SecureBatch.first_failure(responses) == 0
    # the next batch (clean-up) is accepted by the card: MAC chain and counter were rewound
    nxt = plans.SecureBatch(host, plans.delete_ap(instance_aid(Area.LOCAL, 1), load_file_aid(Area.LOCAL, 1)))
    later = nxt.results(agent(card, nxt.script(), {}, log))
    assert [r.sw for r in later] == [0x9000, 0x9000]
    assert [(i, p1) for i, p1, _ in log[-2:]] == [(0xE4, 0x00), (0xE4, 0x00)]
