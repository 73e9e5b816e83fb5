"""pcscd + vpcd for tests: start pcscd when it is not running (and stop only what was started),
put a virtual card into a free vpcd reader slot, and talk to it through pyscard.

vpcd offers one reader per configured CHANNELID with two slots each (/etc/reader.conf.d/vpcd;
default CHANNELID 0x8C7B = 35963, slots on ports 35963 and 35964, readers "Virtual PCD 00 00"
and "Virtual PCD 00 01"); README.md explains how to add more."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from vcard import CardUnresponsive, VirtualCard
from vcard.vpcd import VpcdClient

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
READER_PREFIX = "Virtual PCD"


def require_real() -> bool:
    return os.environ.get("CARDAP_REQUIRE_REAL_SERVICES") == "1"


def unavailable(reason: str) -> None:
    """Skip, or fail when CI requires the real services."""
    if require_real():
        pytest.fail(f"CARDAP_REQUIRE_REAL_SERVICES=1 but {reason}")
    pytest.skip(reason)


def pcscd_binary() -> str | None:
    return shutil.which("pcscd") or ("/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists() else None)


def pcscd_running() -> bool:
    return subprocess.run(["pidof", "pcscd"], capture_output=True).returncode == 0  # noqa: S607


def vpcd_ports() -> dict[str, int]:
    """Reader name -> vpcd TCP port, from the vpcd reader configuration (two slots per CHANNELID)."""
    text = VPCD_CONF.read_text() if VPCD_CONF.exists() else "CHANNELID 0x8C7B"
    ports = {}
    for index, match in enumerate(re.finditer(r"^\s*CHANNELID\s+(\S+)", text, re.M)):
        base = int(match.group(1), 0)
        for slot in range(2):
            ports[f"{READER_PREFIX} {index:02d} {slot:02d}"] = base + slot
    return ports


def list_readers() -> list[str]:
    from smartcard.Exceptions import ListReadersException
    from smartcard.System import readers

    try:
        return [str(r) for r in readers()]
    except ListReadersException:
        return []


def card_present(reader: str) -> bool:
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        return False
    try:
        hresult, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        if hresult != scard.SCARD_S_SUCCESS:
            return False
        return bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


def wait_for(predicate, timeout: float = 10.0, what: str = "") -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


@contextmanager
def pcscd_service() -> Iterator[None]:
    if pcscd_binary() is None or not VPCD_DRIVER.exists():
        unavailable("pcscd and vsmartcard-vpcd are not installed (scripts/system-deps.sh test)")
    try:
        import smartcard  # noqa: F401
    except ImportError:
        unavailable("pyscard is not installed")
    started: subprocess.Popen[bytes] | None = None
    if not pcscd_running():
        if os.geteuid() != 0:
            unavailable("pcscd is not running and only root can start it")
        started = subprocess.Popen(  # noqa: S603
            [pcscd_binary() or "pcscd", "-f"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: any(r.startswith(READER_PREFIX) for r in list_readers()), 15, "pcscd to list vpcd readers"
        )
        yield
    finally:
        if started is not None:
            started.terminate()
            try:
                started.wait(5)
            except subprocess.TimeoutExpired:
                started.kill()


@dataclass
class PcscCard:
    """A virtual card in a vpcd reader slot, driven through pyscard."""

    card: VirtualCard
    client: VpcdClient
    reader: str
    connection: object = None

    def connect(self) -> None:
        from smartcard.System import readers

        wait_for(lambda: card_present(self.reader), 10, f"a card in {self.reader}")
        reader = next(r for r in readers() if str(r) == self.reader)
        conn = reader.createConnection()
        conn.connect()
        self.connection = conn

    def transmit(self, apdu: bytes) -> bytes:
        from smartcard.Exceptions import CardConnectionException

        try:
            data, sw1, sw2 = self.connection.transmit(list(apdu))  # type: ignore[attr-defined]
        except CardConnectionException as e:
            raise CardUnresponsive(str(e)) from e
        return bytes(data) + bytes([sw1, sw2])

    def reset(self) -> None:
        """Power-cycle: after tearing the card was pulled; wait for it to be back and reconnect."""
        from smartcard.Exceptions import CardConnectionException

        with contextlib.suppress(CardConnectionException):
            self.connection.disconnect()  # type: ignore[attr-defined]
        self.connect()

    def close(self) -> None:
        try:
            if self.connection is not None:
                self.connection.disconnect()  # type: ignore[attr-defined]
        except Exception:  # noqa: S110 - the card may be gone already
            pass
        self.client.close()
        wait_for(lambda: not card_present(self.reader), 10, f"{self.reader} to empty")


def insert_card(card: VirtualCard, *, quickack: bool = True, wait: float = 60.0) -> PcscCard:
    """Put ``card`` into the first vpcd slot that has no card (waiting while others use them all)."""
    ports = vpcd_ports()
    end = time.monotonic() + wait
    while True:
        listed = list_readers()
        for reader, port in ports.items():
            if reader in listed and not card_present(reader):
                client = VpcdClient(card, port=port, quickack=quickack)
                client.start()
                pc = PcscCard(card, client, reader)
                try:
                    pc.connect()
                except TimeoutError:
                    client.close()
                    continue  # another process got this slot first
                return pc
        if time.monotonic() > end:
            raise RuntimeError(f"no free vpcd reader slot among {sorted(ports)}")
        time.sleep(0.5)
