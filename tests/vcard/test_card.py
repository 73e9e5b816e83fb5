"""The virtual card in-process: status words for bad input, identity data, the secure channel's
failure modes, the standard APs and their command log, faults, persistence and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gpcard import gp
from gpcard.apdu import CommandAPDU
from gpcard.scp03 import StaticKeys
from gpcard.sw import CardError
from tests.pcsc import host
from vcard import CardMute, CardTorn, VirtualCard
from vcard.bureau import DEMO_MASTER_KEYS, diversify
from vcard.card import CardConfig

h = bytes.fromhex


def sw_of(card: VirtualCard, apdu: str) -> int:
    return int.from_bytes(card.transmit(h(apdu))[-2:], "big")


@pytest.fixture
def card() -> VirtualCard:
    return VirtualCard.create()


@pytest.mark.parametrize(
    ("apdu", "status"),
    [
        ("00", 0x6700),  # shorter than a header
        ("00A404", 0x6700),
        ("00A4040005A000", 0x6700),  # Lc says 5, 2 bytes follow
        ("00A40400000002A0", 0x6700),  # extended Lc 2, 1 byte follows
        ("FFA4040000", 0x6E00),  # CLA not supported
        ("01A4040008A000000151000000", 0x6881),  # logical channel 1
        ("00A4040802A000", 0x6A86),  # SELECT P2 08
        ("00A4040003A00000", 0x6700),  # AID too short
        ("00A4040008D392FFFFFFFFFFFF", 0x6A82),  # unknown AID
        ("80CA004500", 0x6985),  # nothing selected
    ],
)
def test_malformed_or_misplaced_commands_get_precise_status_words(card, apdu, status):
    assert sw_of(card, apdu) == status


def test_sd_commands_need_the_right_parameters(card):
    assert sw_of(card, "00A4040008D392100031000201") == 0x9000
    assert sw_of(card, "80CA9F7F00") == 0x6A88  # GET DATA of an unknown tag
    assert sw_of(card, "80CC000000") == 0x6D00  # unknown INS
    assert sw_of(card, "80F2400002" + "4F00") == 0x6982  # GET STATUS without a secure channel
    assert sw_of(card, "80E60C0000") == 0x6982
    assert sw_of(card, "8050300007" + "11" * 7) == 0x6700  # host challenge of 7 bytes


def test_identity_and_key_information(card):
    s = host.CardSession(card.transmit)
    s.select(host.LOCAL_SD)
    iin, cin = s.card_identity()
    assert cin == card.state.cin and iin == card.state.iin
    keys = gp.parse_key_information(s.send(gp.get_data(gp.TAG_KEY_INFORMATION)).data)
    assert [(k.key_id, k.version, k.key_type, k.key_length) for k in keys] == [
        (i, 0x30, 0x88, 16) for i in (1, 2, 3)
    ]
    recognition = gp.parse_card_data(s.send(gp.get_data(gp.TAG_CARD_DATA)).data)
    assert recognition[0x64] == h("2A864886FC6B040370")  # SCP03, i = 70


def test_per_card_keys_follow_the_documented_kdf(card):
    """The bureau's diversification equals the SP 800-108 KDF computed independently."""
    from cryptography.hazmat.primitives.ciphers import algorithms
    from cryptography.hazmat.primitives.kdf.kbkdf import KBKDFCMAC, CounterLocation, Mode

    master = DEMO_MASTER_KEYS[host.LOCAL_SD]
    s = card.state
    for constant, key in zip(
        (0x41, 0x42, 0x43),
        (s.sds[host.LOCAL_SD].keys.enc, s.sds[host.LOCAL_SD].keys.mac, s.sds[host.LOCAL_SD].keys.dek),
        strict=True,
    ):
        fixed = bytes(11) + bytes([constant]) + b"\x00" + (128).to_bytes(2, "big")
        kdf = KBKDFCMAC(
            algorithms.AES,
            Mode.CounterMode,
            16,
            1,
            None,
            CounterLocation.MiddleFixed,
            None,
            None,
            fixed + s.iin + s.cin,
            break_location=len(fixed),
        )
        assert kdf.derive(master) == key
    assert diversify(master, s.iin, s.cin).enc == s.sds[host.LOCAL_SD].keys.enc


def test_wrong_mac_closes_the_channel(card):
    s = host.open_sd(card.transmit)
    wrapped = bytearray(s.scp.wrap(gp.get_data(gp.TAG_RESOURCES)).encode())
    wrapped[-2] ^= 0x01  # flip a MAC bit (the byte before Le)
    assert card.transmit(bytes(wrapped)) == h("6982")
    # the next correctly wrapped command is refused too: the session is gone
    s.scp.discard_pending()
    assert card.transmit(s.scp.wrap(gp.get_data(gp.TAG_RESOURCES)).encode())[-2:] == h("6982")
    host.open_sd(card.transmit)  # re-authentication works


def test_unprotected_command_inside_a_session_ends_it(card):
    s = host.open_sd(card.transmit)
    assert card.transmit(gp.get_status(0x40).encode()) == h("6982")
    assert card.transmit(s.scp.wrap(gp.get_status(0x40)).encode())[-2:] == h("6982")


def test_area_management_needs_level_33(card):
    s = host.open_sd(card.transmit, level=0x01)
    with pytest.raises(CardError) as e:
        s.list_content()
    assert e.value.sw == 0x6982


def test_get_status_pages_with_6310(card):
    desc = host.description("C")
    s = host.open_sd(card.transmit)
    for serial in range(1, 13):
        s.run(host.install_commands(desc, bytes(host.instance_aid(host.Area.LOCAL, serial))))
    first = s.send(gp.get_status(0x40), expect=(0x6310,))
    assert first.sw == 0x6310
    assert len(s.list_content()) == 12


def test_put_key_replaces_the_key_set(card):
    s = host.open_sd(card.transmit)
    new = [bytes([i]) * 16 for i in (1, 2, 3)]
    r = s.send(gp.put_key(0x31, new, s.scp.encrypt_key, old_version=0x30))
    gp.parse_put_key_response(r.data, 0x31, new)
    s2 = host.CardSession(card.transmit)
    s2.select(host.LOCAL_SD)
    s2.open_secure_channel(StaticKeys(new[0], new[1], new[2], 0x31))


def test_static_test_keys(tmp_path):
    card = VirtualCard.create(CardConfig(static_key=h("404142434445464748494A4B4C4D4E4F")))
    for sd in (host.ISD, host.LOCAL_SD, host.EXTENDED_SD):
        s = host.CardSession(card.transmit)
        s.select(sd)
        s.open_secure_channel(StaticKeys.single(h("404142434445464748494A4B4C4D4E4F")), security_level=0x33)


# --- standard APs -------------------------------------------------------------------------------


def test_standard_aps_answer_select_and_every_command_is_logged(card):
    aids = ["D392F000260100000001", "D3921000310001010408", "D3921000310001010402", "D3921000310001010401"]
    for aid in aids:
        assert sw_of(card, f"00A404000{len(aid) // 2:X}{aid}") == 0x9000
    assert card.standard_ap_commands == 4
    assert sw_of(card, "00A4020C02000A") == 0x6982  # the 住基 AP reveals nothing
    assert card.standard_ap_commands == 5
    assert sw_of(card, "00A4040008D392100031000201") == 0x9000  # an SD: not logged
    assert card.standard_ap_commands == 5


STANDARD_AP_AIDS = {
    h("D392F000260100000001"),  # JPKI (DESIGN.md's public AIDs, written out here, not imported)
    h("D3921000310001010408"),  # text input support
    h("D3921000310001010402"),  # card surface
    h("D3921000310001010401"),  # 住基
}


def test_get_status_through_the_isd_lists_every_application_on_the_card(card):
    """GPC 2.3 §11.4: the card manager reports the area SDs, the standard APs and the card APs of
    both areas (each with its own SD in tag CC); an area SD reports only its own card APs."""
    desc = host.description("C")
    local_ap, extended_ap = bytes(host.instance_aid(host.Area.LOCAL, 3)), bytes(
        host.instance_aid(host.Area.EXTENDED, 4)
    )
    host.open_sd(card.transmit).run(host.install_commands(desc, local_ap))
    host.open_sd(card.transmit, host.EXTENDED_SD).run(host.install_commands(desc, extended_ap))
    before = card.standard_ap_commands

    entries = host.open_sd(card.transmit, host.ISD, level=0x01).list_content(gp.StatusKind.APPLICATIONS)
    by_aid = {bytes(e.aid): e for e in entries}
    assert set(by_aid) == {host.LOCAL_SD, host.EXTENDED_SD, local_ap, extended_ap} | STANDARD_AP_AIDS
    for aid in STANDARD_AP_AIDS:
        assert by_aid[aid].life_cycle == 0x0F and bytes(by_aid[aid].associated_sd) == host.ISD
        assert not by_aid[aid].is_security_domain
    assert by_aid[host.LOCAL_SD].is_security_domain
    assert bytes(by_aid[local_ap].associated_sd) == host.LOCAL_SD
    assert bytes(by_aid[extended_ap].associated_sd) == host.EXTENDED_SD
    assert by_aid[local_ap].life_cycle == 0x07  # installed and selectable, not personalised
    # an area SD still sees its own area only
    assert [bytes(e.aid) for e in host.open_sd(card.transmit).list_content()] == [local_ap]
    # listing the standard APs through the card manager addresses none of them
    assert card.standard_ap_commands == before == 0


def test_jpki_serves_its_public_certificate_and_pin_status(card):
    from cryptography import x509

    assert sw_of(card, "00A4040C0AD392F000260100000001") == 0x9000
    assert sw_of(card, "00A4020C02000A") == 0x9000
    head = card.transmit(h("00B0000004"))
    size = int.from_bytes(head[2:4], "big") + 4
    der = b""
    while len(der) < size:
        r = card.transmit(bytes([0, 0xB0, len(der) >> 8, len(der) & 0xFF, min(0xFF, size - len(der))]))
        assert r[-2:] == h("9000")
        der += r[:-2]
    cert = x509.load_der_x509_certificate(der)
    assert card.state.cin.hex().upper() in cert.subject.rfc4514_string()
    assert sw_of(card, "00A4020C020001") == 0x9000
    assert sw_of(card, "00B0000004") == 0x6982  # signature certificate needs the signature PIN
    assert sw_of(card, "00A4020C020018") == 0x9000
    assert sw_of(card, "0020008000") == 0x63C3
    assert sw_of(card, "002000800439393939") == 0x63C2


# --- faults -------------------------------------------------------------------------------------


def test_mute_card_stops_answering():
    card = VirtualCard.create(CardConfig(faults=["mute=1"]))
    card.transmit(h("00A4040008A000000151000000"))
    with pytest.raises(CardMute):
        card.transmit(h("00A4040008A000000151000000"))


def test_torn_card_needs_a_reset(card):
    card.faults.tear_at = 1
    with pytest.raises(CardTorn):
        card.transmit(h("00A4040008A000000151000000"))
    with pytest.raises(CardTorn):
        card.transmit(h("00A4040008A000000151000000"))
    assert card.reset() == h("3BE000FF8131FE4514")
    assert sw_of(card, "00A4040008A000000151000000") == 0x9000


def test_wrong_keys_fail_authentication():
    card = VirtualCard.create(CardConfig(faults=["wrong-keys"]))
    with pytest.raises(Exception, match="cryptogram"):
        host.open_sd(card.transmit)


def test_memory_full_and_blocked_pin_faults():
    card = VirtualCard.create(CardConfig(faults=["memory-full"]))
    s = host.open_sd(card.transmit)
    assert s.free_memory().free_nonvolatile == 0
    with pytest.raises(CardError) as e:
        s.run(host.install_commands(host.description("C"), bytes(host.instance_aid(host.Area.LOCAL, 1))))
    assert e.value.sw == 0x6A84 and not card.state.instances
    card.faults.memory_full = False
    desc = host.description("A")
    inst = bytes(host.instance_aid(host.Area.LOCAL, 2))
    host.open_sd(card.transmit).run(
        host.install_commands(desc, inst) + host.personalise_commands(inst, host.content_dgis(desc))
    )
    card.faults.pin_blocked = True
    a = host.ap_session(card.transmit, inst, level=0x01)
    assert a.send(CommandAPDU(0, 0x20, 0, 0x80, host.PIN.encode()), expect=(0x6983,)).sw == 0x6983


def test_refused_store_data_changes_nothing(card):
    desc = host.description("A")
    inst = bytes(host.instance_aid(host.Area.LOCAL, 3))
    s = host.open_sd(card.transmit)
    s.run(host.install_commands(desc, inst))
    before = card.state.to_dict()
    good = gp.dgi_file_content(1, 1, 0, b"1234")
    bad = gp.dgi_file_content(1, 9, 0, b"1234")  # record 9 of 3
    cmds = host.personalise_commands(inst, [good + bad])
    s.send(cmds[0])
    with pytest.raises(CardError) as e:
        s.send(cmds[1])
    assert e.value.sw == 0x6A80
    assert card.state.to_dict() == before


# --- persistence and CLI ------------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path):
    path = tmp_path / "card.json"
    card = VirtualCard.create(state_file=path)
    desc = host.description("C")
    inst = bytes(host.instance_aid(host.Area.LOCAL, 5))
    host.open_sd(card.transmit).run(
        host.install_commands(desc, inst) + host.personalise_commands(inst, host.content_dgis(desc))
    )
    again = VirtualCard.create(state_file=path)
    assert again.state.cin == card.state.cin
    assert again.state.instances[inst].life_cycle == 0x0F
    assert not list(tmp_path.glob("*.tmp"))  # written atomically, nothing left over


def test_cli_info_prints_aids_cin_and_state(tmp_path):
    path = tmp_path / "card.json"
    out = subprocess.run(
        [sys.executable, "-m", "vcard", "info", "--state", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    info = json.loads(out)
    assert info["isd"] == "A000000151000000"
    assert set(info["security_domains"]) == {"D392100031000201", "D392100031000202"}
    assert info["standard_aps"]["D392F000260100000001"] == "JPKI"
    assert info["cin"] == json.loads(path.read_text())["cin"].upper()
    assert info["card_life_cycle"] == "0F"


def test_cli_refuses_unknown_fault(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "vcard", "info", "--fault", "melt"], capture_output=True, text=True
    )
    assert proc.returncode != 0 and "unknown fault" in proc.stderr


def test_standard_ap_log_never_holds_a_pin(card):
    card.transmit(h("00A4040C0AD392F000260100000001"))
    card.transmit(h("00A4020C020018"))
    card.transmit(h("002000800431323334"))  # the right JPKI PIN "1234"
    assert card.standard_ap_commands == 3
    assert not any("31323334" in entry for entry in card.standard_ap_log)
    assert card.standard_ap_log[-1] == "JPKI 00200080 +5"


def test_locking_an_application_and_unlocking_it(card):
    desc = host.description("C")
    inst = bytes(host.instance_aid(host.Area.LOCAL, 31))
    s = host.open_sd(card.transmit)
    s.run(host.install_commands(desc, inst) + host.personalise_commands(inst, host.content_dgis(desc)))
    s.send(gp.set_status(0x40, 0x80, inst))
    assert s.list_content()[0].life_cycle == 0x8F
    assert sw_of(card, "00A4040008" + inst.hex()) == 0x6283
    s = host.open_sd(card.transmit)
    s.send(gp.set_status(0x40, 0x00, inst))
    assert s.list_content()[0].life_cycle == 0x0F
    assert sw_of(card, "00A4040008" + inst.hex()) == 0x9000


def test_an_area_sd_cannot_lock_itself_or_the_card(card):
    s = host.open_sd(card.transmit)
    for cmd in (gp.set_status(0x40, 0x80, host.LOCAL_SD), gp.set_status(0x80, 0x7F)):
        with pytest.raises(CardError) as e:
            s.send(cmd)
        assert e.value.sw == 0x6982
        s = host.open_sd(card.transmit)
    assert card.state.life_cycle == 0x0F and not card.state.sds[host.LOCAL_SD].locked


def test_load_with_a_wrong_hash_or_too_big_is_refused(card):
    from gpcard.apdesc import dap_sign, load_blocks, load_file_aid, load_file_hash
    from vcard.bureau import demo_dap_private_key

    block = host.description("C").encode().replace(b"\x80\x01C", b"\x80\x01X", 1)
    elf = bytes(load_file_aid(host.Area.LOCAL, 9))
    signature = dap_sign(block, demo_dap_private_key())
    s = host.open_sd(card.transmit)
    s.send(
        gp.install_for_load(
            elf,
            host.LOCAL_SD,
            data_block_hash=load_file_hash(block + b"x"),
            parameters=gp.load_parameters(len(block)),
        )
    )
    with pytest.raises(CardError) as e:
        s.run(gp.load_commands(load_blocks(host.ISD, block, signature)))
    assert e.value.sw == 0x6985 and not card.state.load_files
    s = host.open_sd(card.transmit)
    with pytest.raises(CardError) as e:
        s.send(
            gp.install_for_load(
                elf, host.LOCAL_SD, data_block_hash=load_file_hash(block), parameters=gp.load_parameters(8193)
            )
        )
    assert e.value.sw == 0x6A84
    s = host.open_sd(card.transmit)
    with pytest.raises(CardError) as e:  # LOAD without INSTALL [for load]
        s.run(gp.load_commands(load_blocks(host.ISD, block, signature)))
    assert e.value.sw == 0x6985 and not card.state.load_files
