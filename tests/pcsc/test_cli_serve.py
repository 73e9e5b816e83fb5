"""``python -m vcard serve`` as a separate process: the card appears in a vpcd reader, pyscard
reads its CIN, and with ``--state`` the same card (and what was loaded on it) comes back after a
restart."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.pcsc import host
from tests.pcsc.readers import card_present, list_readers, vpcd_ports, wait_for

pytestmark = pytest.mark.pcsc


@contextmanager
def served(state: Path, *extra: str) -> Iterator[str]:
    free = [(r, p) for r, p in vpcd_ports().items() if r in list_readers() and not card_present(r)]
    if not free:
        pytest.fail("no free vpcd reader slot")
    reader, port = free[0]
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "vcard", "serve", "--state", str(state), "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: card_present(reader), 15, f"the served card in {reader}")
        yield reader
    finally:
        proc.terminate()
        proc.wait(10)
        wait_for(lambda: not card_present(reader), 10, f"{reader} to empty")


def transmit_in(reader: str):  # type: ignore[no-untyped-def]
    from smartcard.System import readers

    conn = next(r for r in readers() if str(r) == reader).createConnection()
    conn.connect()

    def transmit(apdu: bytes) -> bytes:
        data, sw1, sw2 = conn.transmit(list(apdu))
        return bytes(data) + bytes([sw1, sw2])

    return conn, transmit


def test_served_card_keeps_its_state_across_restarts(pcscd, tmp_path):
    state = tmp_path / "card.json"
    desc = host.description("C")
    inst = bytes(host.instance_aid(host.Area.LOCAL, 21))
    with served(state, "--quota", "local=4096") as reader:
        conn, transmit = transmit_in(reader)
        s = host.open_sd(transmit)
        cin = s.card_identity()[1]
        s.run(host.install_commands(desc, inst) + host.personalise_commands(inst, host.content_dgis(desc)))
        assert s.free_memory().quota == 4096
        conn.disconnect()
    with served(state) as reader:
        conn, transmit = transmit_in(reader)
        s = host.open_sd(transmit)
        assert s.card_identity()[1] == cin
        assert [bytes(e.aid) for e in s.list_content()] == [inst]
        conn.disconnect()
