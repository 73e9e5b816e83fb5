"""Random APDUs never crash or hang the card: process() always returns at least a valid status
word — on a fresh card, inside an area SD's level-33 channel, inside a card AP, and when the
random bytes are correctly MACed (so they reach the command handlers)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpcard.apdu import CommandAPDU
from tests.pcsc import host
from vcard import VirtualCard

VALID_SW1 = {0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F}
INTERESTING_INS = [
    0xA4,
    0xCA,
    0x50,
    0x82,
    0xF2,
    0xE6,
    0xE8,
    0xE4,
    0xE2,
    0xD8,
    0xF0,
    0x20,
    0xB0,
    0xB2,
    0xD6,
    0xDC,
    0x2A,
]

raw_apdus = st.one_of(
    st.binary(max_size=300),
    st.builds(
        lambda cla, ins, p1, p2, data, le: (
            bytes([cla, ins, p1, p2]) + (bytes([len(data)]) + data if data else b"") + le
        ),
        st.sampled_from([0x00, 0x04, 0x80, 0x84, 0x0C, 0xFF, 0x81]),
        st.sampled_from(INTERESTING_INS) | st.integers(0, 255),
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=255),
        st.sampled_from([b"", b"\x00", b"\x10"]),
    ),
)
SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def check(response: bytes, card: VirtualCard) -> None:
    assert card.internal_errors == 0  # answered by a handler, not by the last-resort catch
    assert len(response) >= 2
    sw1, sw2 = response[-2], response[-1]
    assert (sw1, sw2) == (0x90, 0x00) or sw1 in VALID_SW1


def _ap_card() -> tuple[VirtualCard, bytes]:
    card = VirtualCard.create()
    desc = host.description("D")
    inst = bytes(host.instance_aid(host.Area.LOCAL, 1))
    host.open_sd(card.transmit).run(
        host.install_commands(desc, inst) + host.personalise_commands(inst, host.content_dgis(desc))
    )
    return card, inst


FRESH = VirtualCard.create()
SD_CARD = VirtualCard.create()
AP_CARD, AP_AID = _ap_card()


@SETTINGS
@given(st.lists(raw_apdus, min_size=1, max_size=8))
def test_random_apdus_on_a_fresh_card(apdus):
    for apdu in apdus:
        check(FRESH.process(apdu), FRESH)


@SETTINGS
@given(raw_apdus)
def test_random_apdus_inside_a_secure_channel(apdu):
    host.open_sd(SD_CARD.transmit)
    check(SD_CARD.process(apdu), SD_CARD)


@SETTINGS
@given(raw_apdus)
def test_random_apdus_inside_a_card_ap_session(apdu):
    host.ap_session(AP_CARD.transmit, AP_AID, level=0x33)
    check(AP_CARD.process(apdu), AP_CARD)


@SETTINGS
@given(
    st.integers(0, 255),
    st.sampled_from(INTERESTING_INS),
    st.integers(0, 255),
    st.integers(0, 255),
    st.binary(max_size=200),
)
def test_correctly_maced_random_commands(cla_bits, ins, p1, p2, data):
    s = host.open_sd(SD_CARD.transmit)
    cmd = CommandAPDU(0x80 if cla_bits & 1 else 0x00, ins, p1, p2, data, le=256)
    check(SD_CARD.process(s.scp.wrap(cmd).encode()), SD_CARD)
