"""SCP03 against public traces with known keys: the SCP03 test cases of osmocom pySim
(https://gitea.osmocom.org/sim-card/pysim, tests/unittests/test_globalplatform.py, classes
SCP03_Test_AES{128,192,256}_{11,03,33}): INITIALIZE UPDATE / EXTERNAL AUTHENTICATE with i = 70,
then a GET DATA-style STORE DATA and the four ISO cases wrapped in order, for AES-128/192/256 and
security levels 11, 03 and 33 (byte strings in tests/vectors/pysim_scp03.py); gpcard must
reproduce the host side bit for bit and verify/decrypt the card's responses."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gpcard.scp03 import SCP03Session, StaticKeys, pseudo_random_card_challenge
from tests.vectors import pysim_scp03 as pysim

h = bytes.fromhex

KEYSETS = {name: StaticKeys(enc, mac, dek, kvn) for name, (enc, mac, dek, kvn) in pysim.KEYS.items()}
GET_EID_PLAIN = pysim.GET_EID_PLAIN
GET_EID_RSP_PLAIN = pysim.GET_EID_RSP_PLAIN
CASES_PLAIN = pysim.CASES_PLAIN


@dataclass
class Trace:
    name: str
    keys: StaticKeys
    init_upd_cmd: str
    init_upd_rsp: str
    ext_auth_cmd: str
    get_eid_cmd: str
    get_eid_rsp: str
    cases: tuple[str, str, str, str]


TRACES = [Trace(name, KEYSETS[keys], *rest) for name, (keys, *rest) in pysim.TRACES.items()]


def open_session(t: Trace) -> SCP03Session:
    level = h(t.ext_auth_cmd)[2]
    session = SCP03Session(t.keys, security_level=level, host_challenge=h(t.init_upd_cmd)[5:13])
    assert session.initialize_update().encode() == h(t.init_upd_cmd)
    assert session.authenticate(h(t.init_upd_rsp)).encode() == h(t.ext_auth_cmd)
    assert session.unwrap(h("9000")).sw == 0x9000  # EXTERNAL AUTHENTICATE answer
    return session


@pytest.mark.parametrize("t", TRACES, ids=[t.name for t in TRACES])
def test_trace_one_by_one(t: Trace) -> None:
    session = open_session(t)
    assert session.wrap(GET_EID_PLAIN).encode() == h(t.get_eid_cmd)
    rsp = session.unwrap(h(t.get_eid_rsp) + h("9000"))
    assert rsp.data == GET_EID_RSP_PLAIN and rsp.sw == 0x9000
    for plain, wrapped in zip(CASES_PLAIN, t.cases, strict=True):
        assert session.wrap(plain).encode() == h(wrapped)


@pytest.mark.parametrize("t", TRACES, ids=[t.name for t in TRACES])
def test_trace_batched(t: Trace) -> None:
    # The whole run is wrapped before any response is back: same bytes as one by one.
    session = SCP03Session(
        t.keys, security_level=h(t.ext_auth_cmd)[2], host_challenge=h(t.init_upd_cmd)[5:13]
    )
    session.initialize_update()
    ea = session.authenticate(h(t.init_upd_rsp))
    batch = session.wrap_all([GET_EID_PLAIN, *CASES_PLAIN])
    assert [ea.encode(), *(c.encode() for c in batch)] == [
        h(t.ext_auth_cmd),
        h(t.get_eid_cmd),
        *map(h, t.cases),
    ]
    ea_rsp, eid_rsp = session.unwrap_all([h("9000"), h(t.get_eid_rsp) + h("9000")])
    assert eid_rsp.data == GET_EID_RSP_PLAIN
    assert session.pending == 4


ISD_R = h("A0000005591010FFFFFFFF8900000100")  # GSMA SGP.22 ISD-R, the SD these traces talk to


@pytest.mark.parametrize("t", TRACES, ids=[t.name for t in TRACES])
def test_pseudo_random_card_challenge(t: Trace) -> None:
    # i = 70: the card challenge is KDF(static ENC, 02, sequence counter ‖ SD AID, 64 bits) (Amendment D
    # §6.2.2.1); the traces' card challenges and sequence counters confirm it.
    rsp = h(t.init_upd_rsp)
    card_challenge, sequence_counter = rsp[13:21], rsp[29:32]
    assert pseudo_random_card_challenge(t.keys.enc, sequence_counter, ISD_R) == card_challenge
