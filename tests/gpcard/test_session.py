"""CardSession plumbing: against the public pySim SCP03 trace (as a scripted card), and against the
card double for a level-33 install/personalise/delete run with paging and errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gpcard import gp
from gpcard.aid import LOCAL_AREA_SD_AID, Area, instance_aid
from gpcard.apdesc import Charset, FileLayout, PinPolicy, PinSource, UserNumberLocation, standard_description
from gpcard.apdu import CommandAPDU
from gpcard.scp03 import StaticKeys
from gpcard.session import CardSession
from gpcard.sw import CardError
from tests.gpcard.card_double import CardSCP03
from tests.gpcard.test_scp03_trace import GET_EID_PLAIN, GET_EID_RSP_PLAIN, KEYSETS, TRACES

K128 = KEYSETS["AES128"]

h = bytes.fromhex


def scripted(exchanges: list[tuple[bytes, bytes]]) -> Callable[[bytes], bytes]:
    queue = list(exchanges)

    def transmit(apdu: bytes) -> bytes:
        expected, answer = queue.pop(0)
        assert apdu.hex() == expected.hex()
        return answer

    return transmit


def test_session_replays_public_trace() -> None:
    t = next(t for t in TRACES if t.name == "AES128_33")
    transmit = scripted(
        [
            (gp.select(LOCAL_AREA_SD_AID).encode(), h("9000")),
            (h(t.init_upd_cmd), h(t.init_upd_rsp) + h("9000")),
            (h(t.ext_auth_cmd), h("9000")),
            (h(t.get_eid_cmd), h(t.get_eid_rsp) + h("9000")),
        ]
    )
    s = CardSession(transmit)
    s.select(LOCAL_AREA_SD_AID)
    s.open_secure_channel(K128, security_level=0x33, host_challenge=h(t.init_upd_cmd)[5:13])
    assert s.send(CommandAPDU.parse(GET_EID_PLAIN)).data == GET_EID_RSP_PLAIN


class FakeSD:
    """An area SD on the card double: records the plain commands it receives."""

    def __init__(self, key: bytes) -> None:
        self.scp = CardSCP03(key, key)
        self.received: list[tuple[int, int, int, int, bytes]] = []
        self.answers: dict[tuple[int, int], list[tuple[bytes, bytes]]] = {}

    def transmit(self, raw: bytes) -> bytes:
        cla, ins, p1, p2 = raw[:4]
        if ins == 0xA4:
            return h("9000")
        if ins == 0x50:
            return self.scp.initialize_update(raw)
        if ins == 0x82:
            return self.scp.external_authenticate(raw)
        queue = self.answers.get((ins, p2))
        answer, sw = queue.pop(0) if queue else (b"", h("9000"))
        data, rapdu = self.scp.command(raw, answer, sw)
        self.received.append((cla & ~0x04, ins, p1, p2, data))
        return rapdu


def opened(sd: FakeSD) -> CardSession:
    s = CardSession(sd.transmit)
    s.select(LOCAL_AREA_SD_AID)
    s.open_secure_channel(StaticKeys.single(bytes(range(16))))
    return s


def test_install_personalise_delete_under_level_33() -> None:
    sd = FakeSD(bytes(range(16)))
    s = opened(sd)
    desc = standard_description(
        "A",
        [FileLayout.records(0x0001, 2, 40)],
        user_number=UserNumberLocation(1, 1, 0, 12, Charset.DIGITS),
        pin_policy=PinPolicy(PinSource.HOLDER, 4, 4, 3),
    )
    aid = instance_aid(Area.LOCAL, 5)
    s.install_standard(desc, aid)
    dgis = gp.file_content_dgis(0x0001, 1, b"123456789012") + [gp.dgi_pin("2468"), gp.dgi_ap_key(bytes(16))]
    s.personalise(aid, dgis)
    s.delete(aid)
    ins = [r[1] for r in sd.received]
    assert ins == [0xE6, 0xE6, 0xE2, 0xE4]
    install = sd.received[0]
    assert install[2] == 0x0C and desc.encode() in install[4]
    assert sd.received[2][4] == b"".join(dgis)  # the card got the PIN and key, decrypted, intact
    assert sd.received[2][2] == 0x88  # DGI format, last block


def test_list_content_follows_6310_pages() -> None:
    sd = FakeSD(bytes(range(16)))
    one = h("E30E4F08D392F101000000019F700107")
    two = h("E30E4F08D392F101000000029F70010F")
    sd.answers[(0xF2, 0x02)] = [(one, h("6310"))]
    sd.answers[(0xF2, 0x03)] = [(two, h("9000"))]
    s = opened(sd)
    entries = s.list_content()
    assert [e.aid for e in entries] == [instance_aid(1, 1), instance_aid(1, 2)]
    assert [r[3] for r in sd.received] == [0x02, 0x03]


def test_empty_list_and_free_memory() -> None:
    sd = FakeSD(bytes(range(16)))
    sd.answers[(0xF2, 0x02)] = [(b"", h("6A88"))]
    sd.answers[(0xCA, 0x21)] = [(h("FF211681020001820400001F00830400000400840400002000"), h("9000"))]
    s = opened(sd)
    assert s.list_content() == []
    assert s.free_memory().free_nonvolatile == 0x1F00


def test_unexpected_status_word_raises_card_error() -> None:
    sd = FakeSD(bytes(range(16)))
    sd.answers[(0xE6, 0x00)] = [(b"", h("6A84"))]
    s = opened(sd)
    with pytest.raises(CardError) as err:
        s.install_custom(h("D392F20100000001"), h("D392F2010000000101"), instance_aid(1, 1))
    assert err.value.sw == 0x6A84 and "INSTALL" in str(err.value)


def test_wrong_keys_and_closed_channel() -> None:
    sd = FakeSD(bytes(range(16)))
    s = CardSession(sd.transmit)
    s.select(LOCAL_AREA_SD_AID)
    from gpcard.scp03 import CardCryptogramError

    with pytest.raises(CardCryptogramError):
        s.open_secure_channel(StaticKeys.single(bytes(16)))
    s = opened(sd)
    sd.scp.open = False  # the card dropped the channel (e.g. it saw a bad MAC)
    with pytest.raises(CardError):
        s.delete(instance_aid(1, 1))


def test_get_response_and_wrong_le_outside_channel() -> None:
    transmit = scripted(
        [
            (h("80CA004500"), h("6C0C")),
            (h("80CA00450C"), h("6104")),
            (h("00C0000004"), h("450A0011") + h("6108")),
            (h("00C0000008"), h("2233445566778899") + h("9000")),
        ]
    )
    s = CardSession(transmit)
    assert s.send(gp.get_data(gp.TAG_CIN)).data == h("450A00112233445566778899")


def test_trace_records_steps_without_data() -> None:
    sd = FakeSD(bytes(range(16)))
    steps: list[tuple[str, bytes, int]] = []
    s = CardSession(sd.transmit, trace=lambda name, header, sw: steps.append((name, header, sw)))
    s.select(LOCAL_AREA_SD_AID)
    s.open_secure_channel(StaticKeys.single(bytes(range(16))))
    s.personalise(instance_aid(1, 1), [gp.dgi_pin("975310")])
    names = [n for n, _, _ in steps]
    assert names == [
        "SELECT",
        "INITIALIZE UPDATE",
        "EXTERNAL AUTHENTICATE",
        "personalise card AP: INSTALL",
        "personalise card AP: STORE DATA",
    ]
    assert all(len(header) == 4 and sw == 0x9000 for _, header, sw in steps)
    assert steps[-1][1] == bytes.fromhex("80E28800")
    assert b"975310" not in b"".join(h for _, h, _ in steps)
