"""A card session over any ``transmit(bytes) -> bytes`` (in-process card, pyscard, a relay):
select a security domain, open SCP03, and run card content management, raising
:class:`~gpcard.sw.CardError` on a status word the step does not expect.

Example::

    s = CardSession(card.transmit)
    s.select(LOCAL_AREA_SD_AID)
    iin, cin = s.card_identity()
    s.open_secure_channel(keystore.card_keys(LOCAL_AREA_SD_AID, 0x30, iin, cin))
    s.install_standard(desc, instance_aid(Area.LOCAL, 7))
    s.personalise(instance_aid(Area.LOCAL, 7), [dgi_pin("1234"), ...])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from gpcard import gp, plans
from gpcard.aid import AID, ISD_AID
from gpcard.apdesc import CardAPDescription
from gpcard.apdu import CommandAPDU, ResponseAPDU
from gpcard.scp03 import SCP03Session, StaticKeys
from gpcard.sw import CardError

__all__ = ["CardSession", "Trace", "Transmit"]

Transmit = Callable[[bytes], bytes]
# Called after every command with (step name, plain command header CLA INS P1 P2, status word):
# enough for a job's step log and fault diagnosis, and never any data (PINs, keys, user numbers).
Trace = Callable[[str, bytes, int], None]

_INS_NAMES = {
    0xA4: "SELECT",
    0xCA: "GET DATA",
    0xF2: "GET STATUS",
    0xE6: "INSTALL",
    0xE8: "LOAD",
    0xE4: "DELETE",
    0xE2: "STORE DATA",
    0xD8: "PUT KEY",
    0xF0: "SET STATUS",
}


class CardSession:
    def __init__(self, transmit: Transmit, *, trace: Trace | None = None) -> None:
        self._transmit = transmit
        self._trace = trace
        self.scp: SCP03Session | None = None
        self.selected: AID | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def _exchange(self, cmd: CommandAPDU) -> ResponseAPDU:
        resp = ResponseAPDU.parse(self._transmit(cmd.encode()))
        if self.scp is None:
            # T=0 style answers, handled only outside a secure channel.
            if resp.sw1 == 0x6C:
                resp = ResponseAPDU.parse(self._transmit(cmd.with_(le=resp.sw2 or 256).encode()))
            data = resp.data
            while resp.sw1 == 0x61:
                resp = ResponseAPDU.parse(
                    self._transmit(CommandAPDU(0x00, 0xC0, 0, 0, le=resp.sw2 or 256).encode())
                )
                data += resp.data
            resp = ResponseAPDU(data, resp.sw)
        return resp

    def send(self, cmd: CommandAPDU, *, expect: Sequence[int] = (0x9000,), name: str = "") -> ResponseAPDU:
        """Send one command (wrapped when a secure channel is open); check its status word."""
        if self.scp is None:
            resp = self._exchange(cmd)
        else:
            wrapped = self.scp.wrap(cmd)
            raw = self._exchange(wrapped)
            if raw.sw == 0x6982:
                self.scp.close()  # the card drops the channel on a MAC failure
                self.scp = None
                self._note(name, cmd, raw.sw)
                raise CardError(raw.sw, command=name or f"INS {cmd.ins:02X}")
            resp = self.scp.unwrap(raw)
        self._note(name, cmd, resp.sw)
        if resp.sw not in expect:
            raise CardError(resp.sw, command=name or f"INS {cmd.ins:02X}", data=resp.data)
        return resp

    def _note(self, name: str, cmd: CommandAPDU, sw: int) -> None:
        if self._trace is not None:
            self._trace(name or _INS_NAMES.get(cmd.ins, f"INS {cmd.ins:02X}"), cmd.header, sw)

    def run(self, commands: Iterable[CommandAPDU], *, name: str = "") -> list[ResponseAPDU]:
        """Send commands in order; stop and raise at the first that does not answer 9000."""
        out = []
        for c in commands:
            what = _INS_NAMES.get(c.ins, f"INS {c.ins:02X}")
            out.append(self.send(c, name=f"{name}: {what}" if name else what))
        return out

    # --- selection and identity -------------------------------------------------------------

    def select(self, aid: AID | bytes) -> ResponseAPDU:
        """SELECT an SD or application; this ends any secure channel (a new session starts)."""
        if self.scp is not None:
            self.scp.close()
            self.scp = None
        resp = self.send(gp.select(aid), name="SELECT")
        self.selected = AID(bytes(aid))
        return resp

    def card_identity(self) -> tuple[bytes, bytes]:
        """(IIN value, CIN value) from GET DATA 0042 / 0045 on the selected SD."""
        iin = gp.parse_iin(self.send(gp.get_data(gp.TAG_IIN), name="GET DATA IIN").data)
        cin = gp.parse_cin(self.send(gp.get_data(gp.TAG_CIN), name="GET DATA CIN").data)
        return iin, cin

    def open_secure_channel(
        self, keys: StaticKeys, *, security_level: int = 0x33, host_challenge: bytes | None = None
    ) -> SCP03Session:
        """INITIALIZE UPDATE / EXTERNAL AUTHENTICATE with the selected SD."""
        scp = SCP03Session(keys, security_level=security_level, host_challenge=host_challenge)
        self.scp = None
        init = self.send(scp.initialize_update(), name="INITIALIZE UPDATE")
        ea = scp.authenticate(init)
        resp = scp.unwrap(self._exchange(ea))
        self._note("EXTERNAL AUTHENTICATE", ea, resp.sw)
        if resp.sw != 0x9000:
            raise CardError(resp.sw, command="EXTERNAL AUTHENTICATE")
        self.scp = scp
        return scp

    # --- content management -----------------------------------------------------------------

    def list_content(self, kind: gp.StatusKind | int = gp.StatusKind.APPLICATIONS) -> list[gp.StatusEntry]:
        """GET STATUS through the selected SD, following 6310 pages; [] when nothing matches (6A88)."""
        entries: list[gp.StatusEntry] = []
        next_part = False
        while True:
            resp = self.send(
                gp.get_status(kind, next_part=next_part), expect=(0x9000, 0x6310, 0x6A88), name="GET STATUS"
            )
            if resp.sw == 0x6A88:
                return entries
            entries.extend(gp.parse_get_status(resp.data))
            if resp.sw == 0x9000:
                return entries
            next_part = True

    def free_memory(self) -> gp.CardResources:
        """GET DATA FF21 on the selected SD: quota, free non-volatile memory, applications."""
        return gp.parse_resources(self.send(gp.get_data(gp.TAG_RESOURCES), name="GET DATA FF21").data)

    def install_standard(
        self, description: CardAPDescription, instance: AID | bytes, dgis: Iterable[bytes] | None = None
    ) -> None:
        """INSTALL [for install and make selectable] of a type A/C/D AP (and personalise it if DGIs)."""
        self.run(plans.install_standard_ap(description, instance, dgis), name="install card AP")

    def load_custom(
        self,
        load_file: AID | bytes,
        data_block: bytes,
        signature: bytes,
        *,
        sd: AID | bytes,
        dap_sd: AID = ISD_AID,
    ) -> None:
        """INSTALL [for load] + LOAD blocks of a signed custom load file into ``sd``."""
        cmds = plans.load_custom_ap(
            load_file=load_file, sd=sd, data_block=data_block, signature=signature, dap_sd=dap_sd
        )
        self.run(cmds, name="load custom AP")

    def install_custom(
        self, load_file: AID | bytes, module: AID | bytes, instance: AID | bytes
    ) -> ResponseAPDU:
        """INSTALL [for install and make selectable] from a custom load file (``C9 00``)."""
        return self.send(gp.install_for_install(load_file, module, instance), name="INSTALL [for install]")

    def personalise(self, instance: AID | bytes, dgis: Iterable[bytes]) -> None:
        """INSTALL [for personalization] then STORE DATA with the DGIs (whole DGIs per block)."""
        self.run(plans.personalise_ap(instance, dgis), name="personalise card AP")

    def delete(self, aid: AID | bytes, *, related: bool = False) -> ResponseAPDU:
        return self.send(gp.delete(aid, related=related), name="DELETE")
