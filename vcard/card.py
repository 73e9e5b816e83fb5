"""The virtual My Number Card: power, reset, faults, command dispatch and the standard APs.

``transmit(apdu) -> response`` is what a reader does (it raises when the card is torn or mute);
``process(apdu)`` is the card's own handling of one command and never raises."""

from __future__ import annotations

import copy
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

from vcard import apengine, gp, sw
from vcard.bureau import JPKI_AUTH_PIN, JPKI_SIGN_CERT, JPKI_SIGN_PIN, create_card
from vcard.runtime import Faults, Session
from vcard.scp03 import C_DEC, C_MAC, CardChannel, MacError, StaticKeySet
from vcard.state import (
    APP_PERSONALIZED,
    CARD_LOCKED,
    CARD_TERMINATED,
    EXTENDED_SD_AID,
    ISD_AID,
    JPKI_AID,
    LOCAL_SD_AID,
    LOCK_BIT,
    STANDARD_APS,
    CardState,
)
from vcard.sw import CardError, pin_tries
from vcard.wire import Command, parse_command

log = logging.getLogger(__name__)

ATR = bytes.fromhex("3BE000FF8131FE4514")
GP_MANAGEMENT = {0xF2, 0xE6, 0xE8, 0xE4, 0xE2, 0xD8, 0xF0}
MUTATING = GP_MANAGEMENT | {0x20, 0xD6, 0xDC, 0x50}
LOG_LIMIT = 1000


class CardUnresponsive(Exception):  # noqa: N818 - it names the card's condition
    """The card gave no answer (what a reader reports as a timeout or a removed card)."""


class CardTorn(CardUnresponsive):
    """Power was lost during this command: it was not applied; reset the card to go on."""


class CardMute(CardUnresponsive):
    """The card stopped answering."""


@dataclass
class CardConfig:
    cin: bytes | None = None
    static_key: bytes | None = None
    quotas: dict[bytes, int] = field(default_factory=dict)
    faults: list[str] = field(default_factory=list)


class VirtualCard:
    ATR = ATR

    def __init__(
        self, state: CardState | None = None, *, state_file: Path | None = None, faults: Faults | None = None
    ) -> None:
        self.state = state if state is not None else create_card()
        self.state_file = state_file
        self.faults = faults or Faults()
        self.session = Session()
        self.powered = True
        self.torn = False
        self.commands = 0  # commands received since creation (all, also refused ones)
        self.internal_errors = 0  # handler bugs caught by process(): the fuzz tests require 0

    # --- construction -----------------------------------------------------------------------------

    @classmethod
    def create(cls, config: CardConfig | None = None, *, state_file: Path | None = None) -> VirtualCard:
        """A new card from the bureau, or the card stored in ``state_file`` when it exists."""
        config = config or CardConfig()
        faults, state_faults = Faults.parse(config.faults)
        if state_file is not None and state_file.exists():
            state = CardState.load(state_file)
        else:
            state = create_card(cin=config.cin, static_key=config.static_key, quotas=config.quotas)
        card = cls(state, state_file=state_file, faults=faults)
        for spec in state_faults:
            name, _, value = spec.partition("=")
            if name == "card-locked":
                state.life_cycle = CARD_LOCKED
            else:
                sd = {"local": LOCAL_SD_AID, "extended": EXTENDED_SD_AID}.get(value or "local")
                if sd is None:
                    raise ValueError(f"sd-locked=local|extended, not {value!r}")
                state.sds[sd].life_cycle |= LOCK_BIT
        card.save()
        return card

    def save(self) -> None:
        if self.state_file is not None:
            self.state.save(self.state_file)

    # --- the reader's view ------------------------------------------------------------------------

    def power_on(self) -> bytes:
        self.powered, self.torn = True, False
        self.session = Session()
        return ATR

    def power_off(self) -> None:
        self.powered = False
        self.session = Session()

    def reset(self) -> bytes:
        return self.power_on()

    def transmit(self, apdu: bytes) -> bytes:
        if not self.powered or self.torn:
            raise CardTorn("the card has no power: reset it")
        if self.faults.mute_after is not None:
            if self.faults.mute_after <= 0:
                raise CardMute("the card does not answer")
            self.faults.mute_after -= 1
        if self.faults.tear_at is not None:
            self.faults.tear_at -= 1
            if self.faults.tear_at <= 0:
                self.faults.tear_at = None
                self.torn = True
                self.session = Session()
                raise CardTorn("power lost during the command: not applied")
        return self.process(apdu)

    @property
    def standard_ap_log(self) -> list[str]:
        return self.state.standard_ap_log

    @property
    def standard_ap_commands(self) -> int:
        return len(self.state.standard_ap_log)

    def info(self) -> dict[str, object]:
        s = self.state
        return {
            "atr": ATR.hex().upper(),
            "cin": s.cin.hex().upper(),
            "iin": s.iin.hex().upper(),
            "card_life_cycle": f"{s.life_cycle:02X}",
            "isd": ISD_AID.hex().upper(),
            "security_domains": {
                aid.hex().upper(): {
                    "life_cycle": f"{d.life_cycle:02X}",
                    "quota": d.quota,
                    "free": s.free(aid),
                    "key_version": f"{d.keys.version:02X}",
                }
                for aid, d in s.sds.items()
                if aid != ISD_AID
            },
            "standard_aps": {aid.hex().upper(): name for aid, name in STANDARD_APS.items()},
            "load_files": [aid.hex().upper() for aid in s.load_files],
            "instances": {aid.hex().upper(): f"{i.life_cycle:02X}" for aid, i in s.instances.items()},
            "standard_ap_commands": self.standard_ap_commands,
        }

    # --- the card's side ------------------------------------------------------------------------------

    def process(self, apdu: bytes) -> bytes:
        """Handle one C-APDU; always returns data ‖ SW, never raises."""
        self.commands += 1
        snapshot: CardState | None = None
        try:
            cmd = parse_command(bytes(apdu))
            if cmd.ins in MUTATING:
                snapshot = copy.deepcopy(self.state)
            out = self._dispatch(cmd, bytes(apdu))
        except CardError as e:
            out = e.sw.to_bytes(2, "big")
        except Exception:  # a bug must not crash the reader; the card answers "no precise diagnosis"
            self.internal_errors += 1
            log.exception("internal error handling %s", bytes(apdu)[:4].hex())
            out = sw.NO_PRECISE_DIAGNOSIS.to_bytes(2, "big")
        status = int.from_bytes(out[-2:], "big")
        if snapshot is not None:
            if status == sw.OK or status >> 8 in (0x62, 0x63):
                self.save()
            else:
                self.state = snapshot  # refused: nothing changed
        return out

    def _dispatch(self, cmd: Command, raw: bytes) -> bytes:
        base, channel_no = cmd.cla & 0xFC, cmd.cla & 0x03
        if base not in (0x00, 0x04, 0x80, 0x84):
            raise CardError(sw.CLA_NOT_SUPPORTED)
        if channel_no:
            raise CardError(sw.LOGICAL_CHANNEL_NOT_SUPPORTED)
        sess = self.session
        if cmd.ins == 0xA4 and cmd.p1 == 0x04:
            return self._select_aid(cmd, raw)
        if sess.kind == "standard":
            self._log_standard(sess.selected or b"", raw)
            data, status = self._standard_ap(cmd)
            return data + status.to_bytes(2, "big")
        if sess.kind == "":
            raise CardError(sw.NOT_FOUND if cmd.ins == 0xA4 else sw.CONDITIONS)
        if sess.locked and not (
            cmd.ins == 0xCA or (sess.selected == ISD_AID and cmd.ins in (0x50, 0x82, 0xF0))
        ):
            raise CardError(sw.LOCKED)
        if cmd.ins == 0x50 and cmd.cla == 0x80:
            return self._initialize_update(cmd)
        if cmd.ins == 0x82 and cmd.cla == 0x84 and sess.channel_ready:
            assert sess.channel is not None
            sess.channel_ready = False
            try:
                sess.channel.external_authenticate(cmd)
            except CardError:
                sess.close_channel()
                raise
            return sw.OK.to_bytes(2, "big")
        wrapped = bool(cmd.cla & 0x04)
        channel = sess.channel if sess.authenticated else None
        if wrapped:
            if channel is None:
                raise CardError(sw.SECURITY_STATUS)
            try:
                cmd = channel.unwrap(cmd)
            except MacError:
                sess.close_channel()
                raise CardError(sw.SECURITY_STATUS) from None
        elif channel is not None and channel.level & C_MAC:
            sess.close_channel()  # an unprotected command inside a MACed session ends the session
            raise CardError(sw.SECURITY_STATUS)
        try:
            if sess.kind == "sd":
                data, status = self._sd_command(cmd)
            else:
                inst = self.state.instances[sess.selected or b""]
                data, status = apengine.process(inst, self.faults, sess, cmd, wrapped)
        except CardError as e:
            data, status = b"", e.sw
        if wrapped and channel is not None and sess.channel is channel:
            return channel.wrap(data, status)
        return data + status.to_bytes(2, "big")

    # --- SELECT ----------------------------------------------------------------------------------------

    def _select_aid(self, cmd: Command, raw: bytes) -> bytes:
        if cmd.p2 not in (0x00, 0x0C):
            raise CardError(sw.BAD_P1P2)
        if not 5 <= len(cmd.data) <= 16:
            raise CardError(sw.WRONG_LENGTH)
        aid = cmd.data
        state = self.state
        self.session = sess = Session()  # a new selection ends any session (GP: new secure channel)
        fci = b"" if cmd.p2 == 0x0C else bytes([0x6F, len(aid) + 2, 0x84, len(aid)]) + aid
        card_locked = state.life_cycle in (CARD_LOCKED, CARD_TERMINATED)
        if aid in STANDARD_APS:
            self._log_standard(aid, raw)
            if card_locked:
                raise CardError(sw.LOCKED)
            sess.selected, sess.kind = aid, "standard"
            return fci + sw.OK.to_bytes(2, "big")
        if aid in state.sds:
            sess.selected, sess.kind = aid, "sd"
            locked = state.sds[aid].locked or (card_locked and aid != ISD_AID)
            if locked or card_locked:
                sess.locked = locked or card_locked
                return fci + sw.LOCKED.to_bytes(2, "big")
            return fci + sw.OK.to_bytes(2, "big")
        inst = state.instances.get(aid)
        if inst is None:
            raise CardError(sw.NOT_FOUND)
        if card_locked or inst.life_cycle & LOCK_BIT or state.sds[inst.sd].locked:
            raise CardError(sw.LOCKED)
        if inst.life_cycle != APP_PERSONALIZED:
            raise CardError(sw.CONDITIONS)
        sess.selected, sess.kind = aid, "app"
        return fci + sw.OK.to_bytes(2, "big")

    # --- secure channel opening -----------------------------------------------------------------------

    def _initialize_update(self, cmd: Command) -> bytes:
        sess = self.session
        sess.close_channel()
        if len(cmd.data) != 8:
            raise CardError(sw.WRONG_LENGTH)
        if sess.kind == "sd":
            dom = self.state.sds[sess.selected or b""]
            keys, aid = dom.keys, dom.aid
            if cmd.p1 not in (0x00, keys.version) or cmd.p2 != 0x00:
                raise CardError(sw.REFERENCED_DATA_NOT_FOUND if cmd.p2 == 0 else sw.BAD_P1P2)
            dom.sequence_counter += 1
            counter = dom.sequence_counter
        else:
            inst = self.state.instances[sess.selected or b""]
            if inst.key is None:
                raise CardError(sw.CONDITIONS)
            if cmd.p1 not in (0x00, 0x01) or cmd.p2 != 0x00:
                raise CardError(sw.REFERENCED_DATA_NOT_FOUND if cmd.p2 == 0 else sw.BAD_P1P2)
            keys, aid = StaticKeySet(0x01, inst.key, inst.key, inst.key), inst.aid
            inst.sequence_counter += 1
            counter = inst.sequence_counter
        if counter > 0xFFFFFF:
            raise CardError(sw.CONDITIONS)
        if self.faults.wrong_keys:
            other = hashlib.sha256(b"not the bureau's key" + keys.enc).digest()[: len(keys.enc)]
            keys = StaticKeySet(keys.version, other, other, other)
        channel = CardChannel(keys, aid, counter, self.state.cin)
        data = channel.initialize_update(cmd.data)
        sess.channel, sess.channel_ready = channel, True
        return data + sw.OK.to_bytes(2, "big")

    # --- security domain commands ---------------------------------------------------------------------

    def _sd_command(self, cmd: Command) -> tuple[bytes, int]:
        sess, state = self.session, self.state
        sd = sess.selected or b""
        ins = cmd.ins
        if ins == 0xCA:
            return gp.get_data(state, self.faults, sd, cmd)
        if ins not in GP_MANAGEMENT or not cmd.cla & 0x80:
            raise CardError(sw.INS_NOT_SUPPORTED if ins not in GP_MANAGEMENT else sw.CLA_NOT_SUPPORTED)
        channel = sess.channel if sess.authenticated else None
        if channel is None:
            raise CardError(sw.SECURITY_STATUS)
        if sd != ISD_AID and channel.level != 0x33:
            raise CardError(sw.SECURITY_STATUS)  # area SD management only at level 33
        if ins in (0xD8, 0xE2) and not channel.level & C_DEC:
            raise CardError(sw.SECURITY_STATUS)  # keys and PINs travel encrypted
        if ins == 0xF2:
            return gp.get_status(state, sess, sd, cmd)
        if ins == 0xE6:
            return gp.install(state, self.faults, sess, sd, cmd)
        if ins == 0xE8:
            return gp.load(state, self.faults, sess, sd, cmd)
        if ins == 0xE2:
            return gp.store_data(state, sess, sd, cmd)
        if ins == 0xE4:
            return gp.delete(state, sd, cmd)
        if ins == 0xD8:
            return gp.put_key(state, sess, sd, cmd)
        data, status = gp.set_status(state, sd, cmd)
        if state.sds[sd].locked or state.life_cycle in (CARD_LOCKED, CARD_TERMINATED) and sd != ISD_AID:
            sess.locked = True
        elif sd == ISD_AID:
            sess.locked = state.life_cycle in (CARD_LOCKED, CARD_TERMINATED)
        return data, status

    # --- the standard APs (never addressed by the loading system; every command is logged) ----------

    def _log_standard(self, aid: bytes, raw: bytes) -> None:
        log = self.state.standard_ap_log
        log.append(f"{STANDARD_APS.get(aid, '?')} {raw.hex().upper()}")
        del log[:-LOG_LIMIT]

    def _standard_ap(self, cmd: Command) -> tuple[bytes, int]:
        try:
            if self.session.selected != JPKI_AID:
                raise CardError(
                    sw.SECURITY_STATUS if cmd.ins in (0xA4, 0xB0, 0xB2, 0x20) else sw.INS_NOT_SUPPORTED
                )
            return self._jpki(cmd)
        except CardError as e:
            return b"", e.sw

    def _jpki(self, cmd: Command) -> tuple[bytes, int]:
        """The public face of the JPKI AP, as OpenSC's JPKI driver uses it (card-jpki.c)."""
        sess, state = self.session, self.state
        keys_efs = {0x0017, 0x001A}
        if cmd.ins == 0xA4:
            if cmd.p1 != 0x02 or cmd.p2 not in (0x0C, 0x00):
                raise CardError(sw.BAD_P1P2)
            if len(cmd.data) != 2:
                raise CardError(sw.WRONG_LENGTH)
            fid = int.from_bytes(cmd.data, "big")
            if fid not in state.jpki_files and fid not in state.jpki_pins and fid not in keys_efs:
                raise CardError(sw.NOT_FOUND)
            sess.current_ef = fid
            return b"", sw.OK
        if cmd.ins == 0xB0:
            current = sess.current_ef
            if current is None:
                raise CardError(sw.NO_CURRENT_EF)
            fid = current
            if fid not in state.jpki_files:
                raise CardError(sw.INCOMPATIBLE_FILE)
            if fid == JPKI_SIGN_CERT and JPKI_SIGN_PIN not in sess.jpki_verified:
                raise CardError(sw.SECURITY_STATUS)
            if cmd.p1 & 0x80:
                raise CardError(sw.BAD_P1P2)
            offset = (cmd.p1 << 8) | cmd.p2
            content = state.jpki_files[fid]
            if offset > len(content):
                raise CardError(sw.WRONG_OFFSET)
            return content[offset : offset + (cmd.le or 256)], sw.OK
        if cmd.ins == 0x20:
            if cmd.p1 != 0x00 or cmd.p2 != 0x80:
                raise CardError(sw.BAD_P1P2)
            pin = state.jpki_pins.get(sess.current_ef or 0)
            if pin is None:
                raise CardError(sw.NO_CURRENT_EF)
            if self.faults.pin_blocked or pin.left == 0:
                raise CardError(sw.BLOCKED)
            if not cmd.data:
                return b"", pin_tries(pin.left)
            if cmd.data == pin.value.encode():
                pin.left = pin.limit
                sess.jpki_verified.add(sess.current_ef or 0)
                return b"", sw.OK
            pin.left -= 1
            return b"", pin_tries(pin.left)
        if cmd.ins == 0x2A:
            need = JPKI_AUTH_PIN if sess.current_ef == 0x0017 else JPKI_SIGN_PIN
            if need not in sess.jpki_verified:
                raise CardError(sw.SECURITY_STATUS)
            raise CardError(sw.REFERENCED_DATA_NOT_FOUND)  # a test card holds no private key
        raise CardError(sw.INS_NOT_SUPPORTED)
