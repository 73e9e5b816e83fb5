"""The GlobalPlatform scenarios of docs/card-protocol.md, run the same way in-process and through
pyscard + pcscd + vpcd (``make_terminal`` is parametrised): list content, install type A/C/D,
personalise, read back through the access rules, delete, fill the area, tear at each step, a
locked SD, a blocked PIN, a custom AP with its DAP. The host side is ``gpcard``."""

from __future__ import annotations

import pytest

from gpcard import gp
from gpcard.apdesc import Area, dap_sign, instance_aid
from gpcard.apdu import CommandAPDU
from gpcard.diversify import diversify_keys
from gpcard.session import CardSession
from gpcard.sw import CardError
from tests.pcsc import host
from tests.pcsc.conftest import BOTH_WAYS
from vcard import CardUnresponsive
from vcard.bureau import DEMO_MASTER_KEYS, demo_dap_private_key
from vcard.card import CardConfig

pytestmark = BOTH_WAYS


def install_and_personalise(t, kind: str, serial: int):
    desc = host.description(kind)
    inst = bytes(instance_aid(Area.LOCAL, serial))
    s = host.open_sd(t.transmit)
    s.run(host.install_commands(desc, inst) + host.personalise_commands(inst, host.content_dgis(desc)))
    return desc, inst


def test_list_content_of_a_new_card(make_terminal):
    t = make_terminal()
    s = host.open_sd(t.transmit, host.ISD, level=0x01)
    entries = s.list_content(gp.StatusKind.APPLICATIONS)
    sds = {bytes(e.aid) for e in entries if e.is_security_domain}
    assert sds == {host.LOCAL_SD, host.EXTENDED_SD}
    # the card manager also reports the four standard APs, without any command reaching them
    assert len([e for e in entries if not e.is_security_domain]) == 4
    s = host.open_sd(t.transmit)
    assert s.list_content() == []
    res = s.free_memory()
    assert (res.applications, res.quota, res.free_nonvolatile) == (0, 8192, 8192)
    assert t.card.standard_ap_commands == 0


@pytest.mark.parametrize("kind", ["A", "C", "D"])
def test_install_personalise_read_delete(make_terminal, kind):
    t = make_terminal()
    desc, inst = install_and_personalise(t, kind, 7)
    s = host.open_sd(t.transmit)
    [entry] = s.list_content()
    assert bytes(entry.aid) == inst and entry.life_cycle == 0x0F
    assert s.free_memory().free_nonvolatile == 8192 - host.cost(desc)

    expected = b"12345678-hello"
    if kind == "C":  # free read
        data, status = host.read_first(host.ap_session(t.transmit, inst, level=None), desc, None)
        assert status == 0x9000 and data.startswith(expected)
    else:
        # PIN alone is not enough: rule 02/03 needs mutual authentication
        data, status = host.read_first(host.ap_session(t.transmit, inst, level=None), desc, host.PIN)
        assert status == 0x6982
        if kind == "D":  # C-MAC only is not secure messaging: rule 03 refuses it
            data, status = host.read_first(host.ap_session(t.transmit, inst, level=0x01), desc, host.PIN)
            assert status == 0x6982
        level = 0x01 if kind == "A" else 0x33
        data, status = host.read_first(host.ap_session(t.transmit, inst, level=level), desc, host.PIN)
        assert status == 0x9000 and data.startswith(expected)
        # without the PIN, mutual authentication alone is refused
        data, status = host.read_first(host.ap_session(t.transmit, inst, level=level), desc, None)
        assert status == 0x6982

    s = host.open_sd(t.transmit)
    s.delete(inst)
    assert s.list_content() == []
    assert s.free_memory().free_nonvolatile == 8192
    assert host.select(t.transmit, inst) == 0x6A82
    assert t.card.standard_ap_commands == 0


def test_type_d_answers_encrypted_on_the_wire(make_terminal):
    t = make_terminal()
    desc, inst = install_and_personalise(t, "D", 8)
    s = host.ap_session(t.transmit, inst, level=0x33)
    seen: list[bytes] = []
    inner = s._transmit

    def spy(apdu: bytes) -> bytes:
        r = inner(apdu)
        seen.append(r)
        return r

    s._transmit = spy
    data, status = host.read_first(s, desc, host.PIN)
    assert status == 0x9000 and data.startswith(b"12345678")
    assert b"12345678" not in seen[-1]  # R-ENC: the plain data never crosses the reader


def test_not_personalised_ap_does_not_answer(make_terminal):
    t = make_terminal()
    desc = host.description("C")
    inst = bytes(instance_aid(Area.LOCAL, 9))
    host.open_sd(t.transmit).run(host.install_commands(desc, inst))
    assert host.select(t.transmit, inst) == 0x6985


def test_fill_the_area_to_6a84_changes_nothing(make_terminal):
    t = make_terminal(CardConfig(quotas={host.LOCAL_SD: 1024}))
    desc = host.description("C")
    s = host.open_sd(t.transmit)
    installed = 0
    with pytest.raises(CardError) as e:
        for serial in range(1, 100):
            s.run(host.install_commands(desc, bytes(instance_aid(Area.LOCAL, serial))))
            installed += 1
    assert e.value.sw == 0x6A84
    assert installed == 1024 // host.cost(desc)
    s = host.open_sd(t.transmit)
    assert len(s.list_content()) == installed
    assert s.free_memory().free_nonvolatile == 1024 - installed * host.cost(desc)


def test_tearing_at_each_step_is_atomic(make_terminal):
    t = make_terminal()
    desc = host.description("A")
    inst = bytes(instance_aid(Area.LOCAL, 11))
    steps = host.install_commands(desc, inst) + host.personalise_commands(inst, host.content_dgis(desc))
    for k in range(len(steps)):
        s = host.open_sd(t.transmit)
        s.run(steps[:k])
        t.card.faults.tear_at = 1
        with pytest.raises(CardUnresponsive):
            s.send(steps[k])
        t.reset()
        state = t.card.state
        if k == 0:
            assert inst not in state.instances  # INSTALL torn: nothing installed
        else:
            ap = state.instances[inst]
            assert ap.life_cycle == 0x07  # installed, not personalised
            assert all(r == bytes(len(r)) for recs in ap.files.values() for r in recs)  # no half-written file
            assert host.select(t.transmit, inst) == 0x6985
            host.open_sd(t.transmit).delete(inst)
        assert host.open_sd(t.transmit).free_memory().free_nonvolatile == 8192
    host.open_sd(t.transmit).run(steps)
    assert t.card.state.instances[inst].life_cycle == 0x0F


def test_locked_sd_refuses(make_terminal):
    t = make_terminal(CardConfig(faults=["sd-locked=local"]))
    assert host.select(t.transmit, host.LOCAL_SD) == 0x6283
    _, status = host.raw(t.transmit, "8050300008" + "11" * 8 + "00")
    assert status == 0x6283
    assert host.select(t.transmit, host.EXTENDED_SD) == 0x9000


def test_locked_card_refuses_and_isd_unlocks(make_terminal):
    t = make_terminal(CardConfig(faults=["card-locked"]))
    assert host.select(t.transmit, host.LOCAL_SD) == 0x6283
    assert host.select(t.transmit, host.ISD) == 0x6283
    s = CardSession(t.transmit)
    s.send(gp.select(host.ISD), expect=(0x6283,))  # the ISD answers "locked" but stays reachable
    iin, cin = s.card_identity()
    s.open_secure_channel(diversify_keys(DEMO_MASTER_KEYS[host.ISD], iin, cin), security_level=0x01)
    s.send(gp.set_status(0x80, 0x0F))
    assert host.select(t.transmit, host.LOCAL_SD) == 0x9000


def test_pin_blocks_after_its_retry_limit(make_terminal):
    t = make_terminal()
    desc, inst = install_and_personalise(t, "A", 12)
    s = host.ap_session(t.transmit, inst, level=0x01)
    answers = [
        s.send(CommandAPDU(0x00, 0x20, 0x00, 0x80, b"0000"), expect=(0x63C2, 0x63C1, 0x63C0)).sw
        for _ in range(3)
    ]
    assert answers == [0x63C2, 0x63C1, 0x63C0]
    assert s.send(CommandAPDU(0x00, 0x20, 0x00, 0x80, host.PIN.encode()), expect=(0x6983,)).sw == 0x6983
    t.reset()
    s = host.ap_session(t.transmit, inst, level=0x01)
    assert s.send(CommandAPDU(0x00, 0x20, 0x00, 0x80, host.PIN.encode()), expect=(0x6983,)).sw == 0x6983


def test_custom_ap_with_dap(make_terminal):
    from gpcard.apdesc import (
        AccessRule,
        CardAPDescription,
        FileSpec,
        FileStructure,
        load_blocks,
        load_file_aid,
        load_file_hash,
    )
    from gpcard.apdesc import UserNumberLocation as U

    t = make_terminal()
    desc = CardAPDescription(
        "X",
        (
            FileSpec(
                0x0010, FileStructure.TRANSPARENT, AccessRule.FREE, AccessRule.PERSONALISATION_ONLY, length=64
            ),
        ),
        U(0x0010, 0, 0, 6),
    )
    block = desc.encode()
    elf = bytes(load_file_aid(Area.LOCAL, 3))
    inst = bytes(instance_aid(Area.LOCAL, 3))
    good = dap_sign(block, demo_dap_private_key())
    bad = bytes(64 - len(b"x")) + b"x"

    def load(signature: bytes) -> None:
        s = host.open_sd(t.transmit)
        s.send(
            gp.install_for_load(
                elf,
                host.LOCAL_SD,
                data_block_hash=load_file_hash(block),
                parameters=gp.load_parameters(len(block)),
            )
        )
        s.run(gp.load_commands(load_blocks(host.ISD, block, signature)))

    with pytest.raises(CardError) as e:
        load(bad)
    assert e.value.sw == 0x6982 and elf not in t.card.state.load_files
    load(good)
    s = host.open_sd(t.transmit)
    s.send(gp.install_for_install(elf, elf + b"\x01", inst))
    s.run(host.personalise_commands(inst, [gp.dgi_file_content(0x10, 0, 0, b"ABC123")]))
    assert s.free_memory().free_nonvolatile == 8192 - len(block) - (64 + 32 + 64)
    a = host.ap_session(t.transmit, inst, level=None)
    a.send(CommandAPDU(0x00, 0xA4, 0x02, 0x0C, b"\x00\x10"))
    assert a.send(CommandAPDU(0x00, 0xB0, 0, 0, le=6)).data == b"ABC123"
    s = host.open_sd(t.transmit)
    s.delete(elf, related=True)
    assert s.list_content() == [] and s.list_content(gp.StatusKind.LOAD_FILES) == []
    assert s.free_memory().free_nonvolatile == 8192


def test_tearing_during_delete_and_load_keeps_the_card_whole(make_terminal):
    from gpcard.apdesc import load_blocks, load_file_aid, load_file_hash

    t = make_terminal()
    desc, inst = install_and_personalise(t, "A", 13)
    s = host.open_sd(t.transmit)
    before = t.card.state.to_dict()
    t.card.faults.tear_at = 1
    with pytest.raises(CardUnresponsive):
        s.delete(inst)
    t.reset()
    assert t.card.state.to_dict() == before  # DELETE torn: the AP is whole and personalised
    data, status = host.read_first(host.ap_session(t.transmit, inst, level=0x01), desc, host.PIN)
    assert status == 0x9000 and data.startswith(b"12345678")

    custom = host.description("C").encode().replace(b"\x80\x01C", b"\x80\x01X", 1)
    elf = bytes(load_file_aid(Area.LOCAL, 4))
    blocks = load_blocks(host.ISD, custom, dap_sign(custom, demo_dap_private_key()), block_size=40)
    commands = [
        gp.install_for_load(
            elf,
            host.LOCAL_SD,
            data_block_hash=load_file_hash(custom),
            parameters=gp.load_parameters(len(custom)),
        ),
        *gp.load_commands(blocks),
    ]
    assert len(commands) > 3
    for k in range(len(commands)):
        s = host.open_sd(t.transmit)
        s.run(commands[:k])
        t.card.faults.tear_at = 1
        with pytest.raises(CardUnresponsive):
            s.send(commands[k])
        t.reset()
        assert elf not in t.card.state.load_files  # never a half-loaded file
        assert host.open_sd(t.transmit).free_memory().free_nonvolatile == 8192 - host.cost(desc)
    host.open_sd(t.transmit).run(commands)
    assert t.card.state.load_files[elf].data_block == custom


def test_two_cards_at_once(make_terminal):
    first, second = make_terminal(), make_terminal()
    for t in (first, second):
        s = host.CardSession(t.transmit)
        s.select(host.LOCAL_SD)
        assert s.card_identity()[1] == t.card.state.cin
    assert first.card.state.cin != second.card.state.cin
