"""The PC/SC card reader, through pyscard's low-level ``smartcard.scard`` API: which readers
there are, whether a card is in the one we use (and its ATR), and sending it APDUs."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("cardap_agent.reader")


class CardGone(Exception):
    """No card answered (none in the reader, pulled out, reader unplugged, PC/SC service gone)."""


@dataclass(frozen=True)
class ReaderState:
    reader: str = ""
    card_present: bool = False
    atr: str = ""

    def describe(self) -> str:
        if not self.reader:
            return "no reader"
        if not self.card_present:
            return f"{self.reader}: no card"
        return f"{self.reader}: card present, ATR {self.atr}"


def _scard() -> Any:
    from smartcard import scard

    return scard


class _Context:
    """A PC/SC context, re-established when the service restarts."""

    def __init__(self) -> None:
        self.handle: Any = None

    def get(self) -> Any:
        scard = _scard()
        if self.handle is not None and scard.SCardIsValidContext(self.handle) == scard.SCARD_S_SUCCESS:
            return self.handle
        hresult, handle = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hresult != scard.SCARD_S_SUCCESS:
            self.handle = None
            raise CardGone(f"PC/SC service unavailable ({scard.SCardGetErrorMessage(hresult)})")
        self.handle = handle
        return handle

    def drop(self) -> None:
        if self.handle is not None:
            with contextlib.suppress(Exception):
                _scard().SCardReleaseContext(self.handle)
        self.handle = None


def list_readers(context: _Context | None = None) -> list[str]:
    scard = _scard()
    ctx = context or _Context()
    try:
        hresult, readers = scard.SCardListReaders(ctx.get(), [])
    except CardGone:
        return []
    finally:
        if context is None:
            ctx.drop()
    if hresult != scard.SCARD_S_SUCCESS:
        return []
    return [str(r) for r in readers]


def pick_reader(readers: list[str], wanted: str | None) -> str:
    """The reader to use: the one named (exactly, or the first whose name starts with it), else
    the first reader."""
    if wanted:
        for name in readers:
            if name == wanted:
                return name
        for name in readers:
            if name.startswith(wanted):
                return name
        return ""
    return readers[0] if readers else ""


def reader_state(reader: str, context: _Context | None = None) -> ReaderState:
    scard = _scard()
    ctx = context or _Context()
    try:
        hresult, states = scard.SCardGetStatusChange(ctx.get(), 0, [(reader, scard.SCARD_STATE_UNAWARE)])
    except CardGone:
        return ReaderState()
    finally:
        if context is None:
            ctx.drop()
    if hresult != scard.SCARD_S_SUCCESS:
        return ReaderState()
    _name, event, atr = states[0]
    if event & scard.SCARD_STATE_UNKNOWN:
        return ReaderState()
    present = bool(event & scard.SCARD_STATE_PRESENT) and not event & scard.SCARD_STATE_MUTE
    return ReaderState(reader, present, bytes(atr).hex().upper() if present and atr else "")


class Watcher:
    """Watches the reader in a thread and calls ``on_change`` (from that thread) whenever what the
    agent would report changes: reader plugged/unplugged, card inserted/removed."""

    def __init__(self, wanted: str | None, on_change: Callable[[ReaderState], None]) -> None:
        self.wanted = wanted
        self.on_change = on_change
        self._state = ReaderState()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reader-watch", daemon=True)
        self._ctx = _Context()

    @property
    def state(self) -> ReaderState:
        with self._lock:
            return self._state

    def start(self) -> None:
        self._update()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3)
        self._ctx.drop()

    def _update(self) -> None:
        try:
            reader = pick_reader(list_readers(self._ctx), self.wanted)
            state = reader_state(reader, self._ctx) if reader else ReaderState()
        except Exception as exc:  # the PC/SC service went away: report no reader
            log.debug("reader watch: %s", exc)
            self._ctx.drop()
            state = ReaderState()
        with self._lock:
            changed, self._state = state != self._state, state
        if changed:
            self.on_change(state)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            self._update()


class Card:
    """A connection to the card in ``reader``, kept open across the scripts of one conversation
    (the secure channel lives on the card between them)."""

    def __init__(self) -> None:
        self._ctx = _Context()
        self._card: Any = None
        self._protocol: Any = None
        self.reader = ""

    def _connect(self, reader: str) -> None:
        scard = _scard()
        if not reader:
            raise CardGone("no card reader")
        hresult, card, protocol = scard.SCardConnect(
            self._ctx.get(),
            reader,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        if hresult != scard.SCARD_S_SUCCESS:
            if hresult in (scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED):
                self._ctx.drop()
            raise CardGone(scard.SCardGetErrorMessage(hresult))
        self._card, self._protocol, self.reader = card, protocol, reader

    def transmit(self, reader: str, apdu: bytes) -> bytes:
        scard = _scard()
        if self._card is None or self.reader != reader:
            self.close()
            self._connect(reader)
        hresult, response = scard.SCardTransmit(self._card, self._protocol, list(apdu))
        if hresult != scard.SCARD_S_SUCCESS:
            self.close(reset=False)
            raise CardGone(scard.SCardGetErrorMessage(hresult))
        if len(response) < 2:
            self.close(reset=False)
            raise CardGone("the card answered without a status word")
        return bytes(response)

    def close(self, *, reset: bool = True) -> None:
        """Release the card; ``reset`` ends its session (between conversations)."""
        if self._card is not None:
            scard = _scard()
            with contextlib.suppress(Exception):
                scard.SCardDisconnect(self._card, scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD)
        self._card = None
