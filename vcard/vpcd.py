"""The card end of the vpcd protocol (vsmartcard's virtual PC/SC reader driver for pcscd).

pcscd's vpcd driver listens on 127.0.0.1:35963 (and the following ports, one per virtual
reader slot); the card connects as a TCP client. Every message is a 2-byte big-endian length and
a payload; 1-byte payloads are control: 0 power off, 1 power on, 2 reset, 4 "send the ATR" (the
only one answered); anything longer is a C-APDU answered with the R-APDU. Written here because
Debian's python3-virtualsmartcard does not import on bookworm."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

from vcard.card import CardMute, CardTorn, VirtualCard

log = logging.getLogger(__name__)

DEFAULT_PORT = 35963
POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


class VpcdClient:
    def __init__(
        self, card: VirtualCard, *, host: str = "127.0.0.1", port: int = DEFAULT_PORT, quickack: bool = True
    ) -> None:
        self.card = card
        self.host = host
        self.port = port
        self.quickack = quickack
        self.reinsert_delay = 1.0
        self.stop = threading.Event()
        self.connected = threading.Event()
        self._sock: socket.socket | None = None

    # --- socket helpers -------------------------------------------------------------------------

    def _ack_now(self, sock: socket.socket) -> None:
        # Linux turns quick ACK off again after a while; without it every APDU waits ~40 ms for
        # the delayed ACK (Nagle on the driver's side). So set it after every receive.
        if self.quickack and hasattr(socket, "TCP_QUICKACK"):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            try:
                chunk = sock.recv(n - len(buf))
            except TimeoutError:
                if self.stop.is_set():
                    return None
                continue
            if not chunk:
                return None
            buf += chunk
            self._ack_now(sock)
        return buf

    @staticmethod
    def _send(sock: socket.socket, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(2, "big") + payload)

    # --- the loop -------------------------------------------------------------------------------

    def connect(self) -> socket.socket | None:
        while not self.stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=1.0)
            except OSError:
                time.sleep(0.2)  # pcscd (and with it vpcd) not up yet
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(0.5)
            self._ack_now(sock)
            return sock
        return None

    def serve_forever(self) -> None:
        """Stay inserted in the reader: reconnect when the connection drops, until :meth:`close`."""
        while not self.stop.is_set():
            sock = self.connect()
            if sock is None:
                return
            self._sock = sock
            self.card.power_on()  # a card (re-)inserted into a reader starts from reset
            self.connected.set()
            log.info("card inserted in vpcd reader on %s:%d", self.host, self.port)
            try:
                self.serve_connection(sock)
            except OSError as e:
                log.info("vpcd connection ended: %s", e)
            finally:
                self.connected.clear()
                sock.close()
                self._sock = None
            if not self.stop.is_set():
                # A pulled card is re-inserted a moment later: long enough for pcscd's presence
                # polling (every 400 ms) to see the reader empty.
                time.sleep(self.reinsert_delay)

    def serve_connection(self, sock: socket.socket) -> None:
        while not self.stop.is_set():
            header = self._recv_exact(sock, 2)
            if header is None:
                return
            length = int.from_bytes(header, "big")
            payload = self._recv_exact(sock, length) if length else b""
            if payload is None:
                return
            if length == 1:
                code = payload[0]
                if code == POWER_OFF:
                    self.card.power_off()
                elif code == POWER_ON:
                    self.card.power_on()
                elif code == RESET:
                    self.card.reset()
                elif code == GET_ATR:
                    self._send(sock, self.card.ATR)
                continue
            try:
                response = self.card.transmit(payload)
            except CardTorn:
                log.info("power lost during a command: card pulled from the reader")
                return  # closing the connection is what a torn card looks like to pcscd
            except CardMute:
                continue  # no answer at all: the reader waits until it gives up
            self._send(sock, response)

    def close(self) -> None:
        self.stop.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (tests, many cards in one process)."""
        thread = threading.Thread(target=self.serve_forever, name=f"vpcd-{self.port}", daemon=True)
        thread.start()
        return thread
