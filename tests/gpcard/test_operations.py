"""Whole card operations (gpcard.operations) against the in-process virtual card: the read, a
standard and a custom load, deletes and the round trips each takes (counted by run_in_process)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from gpcard import apdesc, gp, operations
from gpcard.aid import AID, Area, custom_module_aid, instance_aid, load_file_aid
from gpcard.conversation import CardLost, run_in_process
from gpcard.diversify import diversify_keys
from vcard import VirtualCard
from vcard.bureau import DEMO_DAP_PRIVATE_KEY_PEM, DEMO_MASTER_KEYS
from vcard.card import CardConfig


def keys(sd, iin, cin):
    return diversify_keys(DEMO_MASTER_KEYS[bytes(sd)], iin, cin, 0x30)


def challenge(n: int) -> bytes:
    return hmac.new(b"test seed", str(n).encode(), hashlib.sha256).digest()[:8]


def type_a(length: int = 8) -> apdesc.CardAPDescription:
    return apdesc.standard_description(
        "A",
        [apdesc.FileLayout.records(1, 1, length), apdesc.FileLayout.records(2, 4, 32)],
        user_number=apdesc.UserNumberLocation(1, 1, 0, length),
        pin_policy=apdesc.PinPolicy(apdesc.PinSource.HOLDER, 4, 8, 3),
    )


def type_c() -> apdesc.CardAPDescription:
    return apdesc.standard_description(
        "C",
        [apdesc.FileLayout.binary(1, 8), apdesc.FileLayout.binary(2, 64)],
        user_number=apdesc.UserNumberLocation(1, 0, 0, 8),
    )


def custom(size: int = 600) -> apdesc.CardAPDescription:
    # a large description makes the load file span several LOAD blocks
    files = tuple(
        apdesc.FileSpec(
            fid,
            apdesc.FileStructure.TRANSPARENT,
            apdesc.AccessRule.FREE,
            apdesc.AccessRule(0x0F),
            length=size,
        )
        for fid in range(1, 15)
    )
    desc = apdesc.CardAPDescription(apdesc.APType.CUSTOM, files, apdesc.UserNumberLocation(1, 0, 0, 8))
    desc.validate()
    return desc


def read(card):
    return run_in_process(operations.read_card(keys=keys, challenge=challenge), card.transmit)


def instances(card) -> dict[str, str]:
    """The card's own view (its state, not our protocol)."""
    return card.info()["instances"]  # type: ignore[return-value]


def test_read_of_an_empty_card_takes_one_round_trip_and_matches_the_card():
    card = VirtualCard.create(CardConfig(quotas={bytes(AID.from_hex("D392100031000201")): 4096}))
    content, trips = read(card)
    info = card.info()
    assert trips == 1
    assert content.cin == info["cin"] and content.iin == info["iin"]
    local = content.areas["local"]
    assert local.quota == 4096 and local.free == 4096 and local.instances == {}
    assert content.areas["extended"].free == info["security_domains"]["D392100031000202"]["free"]
    assert card.standard_ap_commands == 0


def _load_standard(card, content, desc, area, serial, pin="1234", ap_key=None, user="12345678"):
    inst = instance_aid(area, serial).hex()
    action = operations.install_standard_action(
        ref=f"i{serial}",
        area="local" if area == Area.LOCAL else "extended",
        instance=inst,
        description=desc,
        dgis=operations.personalisation_dgis(desc, user, pin=pin if desc.needs_pin else None, ap_key=ap_key),
    )
    return inst, action


def test_standard_loads_take_one_round_trip_after_the_read_in_both_areas():
    card = VirtualCard.create()
    content, trips = read(card)
    a_inst, a = _load_standard(card, content, type_a(), Area.LOCAL, 1, ap_key=b"K" * 16)
    c_inst, c = _load_standard(card, content, type_c(), Area.EXTENDED, 2)
    outcome, change_trips = run_in_process(
        operations.change_card(content=content, actions=[a, c], keys=keys, challenge=challenge), card.transmit
    )
    assert change_trips == 1 and outcome["error"] == ""
    assert [r["result"] for r in outcome["actions"]] == ["done", "done"]
    assert instances(card) == {a_inst: "0F", c_inst: "0F"}
    again, trips = read(card)
    assert trips == 2  # both areas now hold an AP: GET STATUS through each
    assert again.areas["local"].instances == {a_inst: 0x0F}
    assert again.areas["extended"].instances == {c_inst: 0x0F}
    assert again.areas["local"].free == content.areas["local"].free - apdesc.memory_cost(type_a())


def test_a_custom_multi_block_load_and_its_delete():
    card = VirtualCard.create()
    content, read_trips = read(card)
    desc = custom()
    block = apdesc.build_load_file(desc)
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(DEMO_DAP_PRIVATE_KEY_PEM, password=None)
    signature = apdesc.dap_sign(block, key)  # type: ignore[arg-type]
    assert len(apdesc.load_blocks(AID.from_hex("A000000151000000"), block, signature)) > 1
    inst, lf = instance_aid(Area.EXTENDED, 9).hex(), load_file_aid(Area.EXTENDED, 9).hex()
    action = operations.install_custom_action(
        ref="x",
        area="extended",
        instance=inst,
        load_file=lf,
        module=custom_module_aid(Area.EXTENDED, 9).hex(),
        data_block=block,
        signature=signature,
        dgis=operations.personalisation_dgis(desc, "C0FFEE01", pin=None, ap_key=None),
    )
    outcome, trips = run_in_process(
        operations.change_card(content=content, actions=[action], keys=keys, challenge=challenge),
        card.transmit,
    )
    assert read_trips + trips <= 3 and outcome["actions"][0]["result"] == "done"
    assert instances(card) == {inst: "0F"} and card.info()["load_files"] == [lf]
    content, read_trips = read(card)
    delete = operations.delete_action(ref="d", area="extended", instance=inst, load_file=lf)
    outcome, trips = run_in_process(
        operations.change_card(content=content, actions=[delete], keys=keys, challenge=challenge),
        card.transmit,
    )
    assert read_trips + trips <= 3 and outcome["actions"][0]["result"] == "done"
    assert instances(card) == {} and card.info()["load_files"] == []


def test_a_tolerated_absent_load_file_does_not_stop_the_rest():
    card = VirtualCard.create()
    content, _ = read(card)
    c_inst, c = _load_standard(card, content, type_c(), Area.EXTENDED, 3)
    gone = operations.delete_action(
        ref="gone",
        area="extended",
        instance=instance_aid(Area.EXTENDED, 4).hex(),
        load_file=load_file_aid(Area.EXTENDED, 4).hex(),
        may_be_absent=True,
    )
    outcome, trips = run_in_process(
        operations.change_card(content=content, actions=[gone, c], keys=keys, challenge=challenge),
        card.transmit,
    )
    assert outcome["error"] == "" and {r["ref"]: r["result"] for r in outcome["actions"]} == {
        "gone": "done",
        "i3": "done",
    }
    assert trips == 1  # the tolerant delete runs last
    assert instances(card) == {c_inst: "0F"}


def test_a_full_area_refuses_and_the_outcome_says_so():
    card = VirtualCard.create(CardConfig(faults=["memory-full"]))
    content, _ = read(card)
    _inst, a = _load_standard(card, content, type_a(), Area.LOCAL, 5, ap_key=b"K" * 16)
    outcome, _ = run_in_process(
        operations.change_card(content=content, actions=[a], keys=keys, challenge=challenge), card.transmit
    )
    assert outcome["error"] == "card-refused"
    assert outcome["actions"][0] == {
        "ref": "i5",
        "kind": "install",
        "result": "refused",
        "acknowledged": 0,
        "sw": "6A84",
    }
    assert instances(card) == {}


def test_another_card_in_the_reader_is_caught_before_any_change():
    card = VirtualCard.create()
    content, _ = read(card)
    other = VirtualCard.create(CardConfig(cin=bytes.fromhex("11223344556677889900")))
    _inst, c = _load_standard(other, content, type_c(), Area.EXTENDED, 6)
    outcome, _ = run_in_process(
        operations.change_card(content=content, actions=[c], keys=keys, challenge=challenge), other.transmit
    )
    assert outcome["error"] == "card-changed" and outcome["actions"][0]["result"] == "not-run"
    assert instances(other) == {}


@pytest.mark.parametrize("n_aps", [3, 9])
def test_paged_listings_are_complete(n_aps):
    card = VirtualCard.create()
    content, _ = read(card)
    actions = [_load_standard(card, content, type_c(), Area.EXTENDED, 100 + i)[1] for i in range(n_aps)]
    actions += [_load_standard(card, content, type_c(), Area.LOCAL, 200 + i)[1] for i in range(n_aps)]
    outcome, _ = run_in_process(
        operations.change_card(content=content, actions=actions, keys=keys, challenge=challenge),
        card.transmit,
    )
    assert outcome["error"] == ""
    content, trips = read(card)
    assert len(content.areas["local"].instances) == n_aps == len(content.areas["extended"].instances)
    assert trips == 2 if n_aps <= 6 else trips > 2


def test_read_of_a_card_that_stops_answering_is_card_lost():
    card = VirtualCard.create(CardConfig(faults=["tear=5"]))
    conv = operations.read_card(keys=keys, challenge=challenge)
    batch = next(conv)
    answered = []
    for command in batch.commands:  # what the agent sends back when the card goes silent
        try:
            answered.append(card.transmit(command))
        except Exception:
            break
    assert len(answered) == 4
    with pytest.raises(CardLost):
        conv.send(answered)


def test_command_names_never_carry_data():
    assert operations.command_name(gp.delete(AID.from_hex("D392F2010000000A"), related=True).encode()) == (
        "DELETE [load file]"
    )
    assert operations.command_name(
        gp.install_for_personalization(b"\xd3\x92\xf1\x01\x00\x00\x00\x01").encode()
    ) == ("INSTALL [for personalization]")
