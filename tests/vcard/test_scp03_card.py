"""The card side of SCP03 against public traces with known keys, not against our own host: the
SCP03 test cases of osmocom pySim (https://gitea.osmocom.org/sim-card/pysim,
tests/unittests/test_globalplatform.py, SCP03_Test_AES128_{11,03,33} and AES256_33). The card
must produce the traced card cryptogram, accept the traced EXTERNAL AUTHENTICATE and wrapped
commands (recovering the plain ones), and wrap the plain response exactly as traced. CMAC is
checked against NIST SP 800-38B."""

from __future__ import annotations

import pytest

from tests.vectors import pysim_scp03 as pysim
from vcard.crypto import aes_cmac
from vcard.scp03 import CardChannel, MacError, StaticKeySet
from vcard.wire import parse_command

h = bytes.fromhex
KEYSETS = {name: StaticKeySet(kvn, enc, mac, dek) for name, (enc, mac, dek, kvn) in pysim.KEYS.items()}
GET_EID_PLAIN = pysim.GET_EID_PLAIN
GET_EID_RSP_PLAIN = pysim.GET_EID_RSP_PLAIN
CASES_PLAIN = pysim.CASES_PLAIN

# (keys, INITIALIZE UPDATE cmd, its response, EXTERNAL AUTHENTICATE, wrapped STORE DATA, wrapped
#  response data, the four wrapped ISO cases), for the traces this card's key sets cover.
TRACES = {
    name: (KEYSETS[keys], *rest)
    for name, (keys, *rest) in pysim.TRACES.items()
    if name in ("AES128_11", "AES128_03", "AES128_33", "AES256_33")
}


def open_channel(name: str) -> tuple[CardChannel, tuple]:
    keys, iu_cmd, iu_rsp, ea, *rest = TRACES[name]
    rsp = h(iu_rsp)
    channel = CardChannel(keys, b"", int.from_bytes(rsp[29:32], "big"), rsp[:10])
    cryptogram = channel.start(h(iu_cmd)[5:13], rsp[13:21])
    assert cryptogram == rsp[21:29]
    channel.external_authenticate(parse_command(h(ea)))
    return channel, tuple(rest)


@pytest.mark.parametrize("name", sorted(TRACES))
def test_card_side_reproduces_trace(name):
    channel, (store_data, store_rsp, cases) = open_channel(name)
    assert channel.level == h(TRACES[name][3])[2]
    plain = channel.unwrap(parse_command(h(store_data)))
    assert plain.data == GET_EID_PLAIN[5:-1] and plain.ins == 0xE2 and plain.cla == 0x80
    assert channel.wrap(GET_EID_RSP_PLAIN, 0x9000) == h(store_rsp) + b"\x90\x00"
    for wrapped, expected in zip(cases, CASES_PLAIN, strict=True):
        cmd = channel.unwrap(parse_command(h(wrapped)))
        want = parse_command(expected)
        assert (cmd.cla, cmd.ins, cmd.p1, cmd.p2, cmd.data) == (
            want.cla,
            want.ins,
            want.p1,
            want.p2,
            want.data,
        )


def test_tampered_mac_is_refused():
    channel, (store_data, _rsp, _cases) = open_channel("AES128_33")
    raw = bytearray(h(store_data))
    raw[-2] ^= 0x01  # last MAC byte (before Le)
    with pytest.raises(MacError):
        channel.unwrap(parse_command(bytes(raw)))


def test_wrong_host_cryptogram_is_refused():
    keys, iu_cmd, iu_rsp, ea, *_ = TRACES["AES128_11"]
    rsp = h(iu_rsp)
    channel = CardChannel(keys, b"", 2, rsp[:10])
    channel.start(h(iu_cmd)[5:13], rsp[13:21])
    bad = bytearray(h(ea))
    bad[6] ^= 0xFF
    from vcard.sw import CardError

    with pytest.raises(CardError) as e:
        channel.external_authenticate(parse_command(bytes(bad)))
    assert e.value.sw == 0x6982 and not channel.authenticated


@pytest.mark.parametrize(
    ("key", "message", "mac"),
    [  # NIST SP 800-38B Appendix D.1 / D.3
        ("2b7e151628aed2a6abf7158809cf4f3c", "", "bb1d6929e95937287fa37d129b756746"),
        (
            "2b7e151628aed2a6abf7158809cf4f3c",
            "6bc1bee22e409f96e93d7e117393172a",
            "070a16b46b4d4144f79bdd9dd04a287c",
        ),
        (
            "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
            "6bc1bee22e409f96e93d7e117393172a",
            "28a7023f452e8f82bd4bf28d8c37c35c",
        ),
    ],
)
def test_cmac_nist_vectors(key, message, mac):
    assert aes_cmac(h(key), h(message)) == h(mac)
