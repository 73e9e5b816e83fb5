"""Any PC/SC reader through pyscard: list readers, connect to the card in one, exchange APDUs.
pyscard's exceptions become the module's own (no reader, no card, card removed)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cardap_access.errors import CardRemovedError, NoCardError, NoReaderError


def _pyscard() -> Any:
    try:
        import smartcard.System
    except ImportError as e:  # pragma: no cover - pyscard is a dependency
        raise NoReaderError(str(e)) from None
    return smartcard.System


def list_readers() -> list[str]:
    """Names of the PC/SC readers; raises NoReaderError when there is none (or no PC/SC service)."""
    system = _pyscard()
    try:
        names = [str(r) for r in system.readers()]
    except Exception as e:  # pyscard raises several types when pcscd is absent  # noqa: BLE001
        raise NoReaderError(type(e).__name__) from None
    if not names:
        raise NoReaderError()
    return names


def card_present(reader: str) -> bool:
    from smartcard import scard

    hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hresult != scard.SCARD_S_SUCCESS:
        raise NoReaderError("SCardEstablishContext")
    try:
        hresult, states = scard.SCardGetStatusChange(context, 0, [(reader, scard.SCARD_STATE_UNAWARE)])
        return hresult == scard.SCARD_S_SUCCESS and bool(states[0][1] & scard.SCARD_STATE_PRESENT)
    finally:
        scard.SCardReleaseContext(context)


@dataclass
class PcscCard:
    """A connection to the card in one reader: ``transmit(apdu) -> response`` and ``atr``."""

    reader: str
    connection: Any
    atr: bytes

    def transmit(self, apdu: bytes) -> bytes:
        from smartcard.Exceptions import CardConnectionException

        try:
            data, sw1, sw2 = self.connection.transmit(list(apdu))
        except CardConnectionException:
            raise CardRemovedError() from None
        return bytes(data) + bytes([sw1, sw2])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.disconnect()
        release = getattr(self.connection, "release", None)
        if release is not None:
            with contextlib.suppress(Exception):
                release()

    def __enter__(self) -> PcscCard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(reader: str | None = None) -> PcscCard:
    """Connect to the card in ``reader`` (a name or a unique part of it), or in the first reader
    holding a card."""
    from smartcard.Exceptions import CardConnectionException, NoCardException

    names = list_readers()
    if reader is not None:
        matches = [n for n in names if n == reader] or [n for n in names if reader in n]
        if len(matches) != 1:
            raise NoReaderError(reader)
        candidates = matches
    else:
        candidates = [n for n in names if card_present(n)]
        if not candidates:
            raise NoCardError()
    name = candidates[0]
    target = next(r for r in _pyscard().readers() if str(r) == name)
    conn = target.createConnection()
    try:
        conn.connect()
    except (NoCardException, CardConnectionException):
        with contextlib.suppress(Exception):
            conn.release()
        raise NoCardError(name) from None
    return PcscCard(name, conn, bytes(conn.getATR()))


@contextlib.contextmanager
def connected(reader: str | None = None) -> Iterator[PcscCard]:
    card = connect(reader)
    try:
        yield card
    finally:
        card.close()
