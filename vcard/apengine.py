"""The card AP engine: one engine for types A, C, D and custom APs. An instance is a small file
system (binary or record files) whose description gives each file a read and an update rule:
00 free, 01 PIN, 02 PIN + mutual authentication, 03 + secure messaging, 0F personalisation only,
FF never (docs/card-protocol.md, "Reading a card AP")."""

from __future__ import annotations

import hmac

from vcard import sw
from vcard.apdesc import BINARY, parse_description
from vcard.runtime import Faults, Session
from vcard.scp03 import C_DEC, C_MAC, R_ENC
from vcard.state import Instance
from vcard.sw import CardError, pin_tries
from vcard.wire import Command

Response = tuple[bytes, int]


def _rule_met(rule: int, sess: Session, wrapped: bool) -> bool:
    if rule == 0x00:
        return True
    if rule in (0x0F, 0xFF):
        return False
    if not sess.pin_verified:
        return False
    if rule == 0x01:
        return True
    channel = sess.channel
    if channel is None or not channel.authenticated or not wrapped or not channel.level & C_MAC:
        return False
    if rule == 0x02:
        return True
    return bool(channel.level & C_DEC and channel.level & R_ENC)  # rule 03: secure messaging both ways


def process(inst: Instance, faults: Faults, sess: Session, cmd: Command, wrapped: bool) -> Response:
    desc = parse_description(inst.description)
    ins = cmd.ins
    if ins == 0xA4:  # SELECT EF by FID (SELECT by AID is handled by the card)
        if cmd.p1 != 0x02 or cmd.p2 not in (0x0C, 0x04, 0x00):
            raise CardError(sw.BAD_P1P2)
        if len(cmd.data) != 2:
            raise CardError(sw.WRONG_LENGTH)
        spec = desc.file(int.from_bytes(cmd.data, "big"))
        if spec is None:
            raise CardError(sw.NOT_FOUND)
        sess.current_ef = spec.fid
        if cmd.p2 == 0x0C:
            return b"", sw.OK
        fcp = (
            bytes([0x80, 2])
            + spec.size.to_bytes(2, "big")
            + bytes([0x82, 1, 0x01 if spec.structure == BINARY else 0x02])
        )
        fcp += bytes([0x83, 2]) + cmd.data
        return bytes([0x62, len(fcp)]) + fcp, sw.OK
    if ins == 0x20:
        return _verify(inst, faults, sess, cmd)
    if ins not in (0xB0, 0xB2, 0xD6, 0xDC):
        raise CardError(sw.INS_NOT_SUPPORTED)
    if sess.current_ef is None:
        raise CardError(sw.NO_CURRENT_EF)
    spec = desc.file(sess.current_ef)
    assert spec is not None
    reading = ins in (0xB0, 0xB2)
    if (ins in (0xB0, 0xD6)) != (spec.structure == BINARY):
        raise CardError(sw.INCOMPATIBLE_FILE)
    if not _rule_met(spec.read_rule if reading else spec.update_rule, sess, wrapped):
        raise CardError(sw.SECURITY_STATUS)
    records = inst.files[spec.fid]
    if ins in (0xB0, 0xD6):
        if cmd.p1 & 0x80:
            raise CardError(sw.BAD_P1P2)  # short EF identifiers are not offered
        offset = (cmd.p1 << 8) | cmd.p2
        if offset > spec.length:
            raise CardError(sw.WRONG_OFFSET)
        if reading:
            if cmd.data:
                raise CardError(sw.WRONG_LENGTH)
            count = cmd.le if cmd.le is not None else 256
            return records[0][offset : offset + count], sw.OK
        if not cmd.data or offset + len(cmd.data) > spec.length:
            raise CardError(sw.WRONG_LENGTH)
        records[0] = records[0][:offset] + cmd.data + records[0][offset + len(cmd.data) :]
        return b"", sw.OK
    if cmd.p2 != 0x04:
        raise CardError(sw.BAD_P1P2)
    if not 1 <= cmd.p1 <= spec.count:
        raise CardError(sw.RECORD_NOT_FOUND)
    if reading:
        if cmd.data:
            raise CardError(sw.WRONG_LENGTH)
        return records[cmd.p1 - 1][: cmd.le or 256], sw.OK
    if len(cmd.data) != spec.length:
        raise CardError(sw.WRONG_LENGTH)
    records[cmd.p1 - 1] = cmd.data
    return b"", sw.OK


def _verify(inst: Instance, faults: Faults, sess: Session, cmd: Command) -> Response:
    if cmd.p1 != 0x00 or cmd.p2 != 0x80:
        raise CardError(sw.BAD_P1P2)
    if inst.pin is None:
        raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
    if faults.pin_blocked or inst.pin_tries_left == 0:
        raise CardError(sw.BLOCKED)
    if not cmd.data:
        return b"", sw.OK if sess.pin_verified else pin_tries(inst.pin_tries_left)
    if hmac.compare_digest(cmd.data, inst.pin.encode("ascii")):
        limit = parse_description(inst.description).pin
        inst.pin_tries_left = limit.retry_limit if limit else 0
        sess.pin_verified = True
        return b"", sw.OK
    inst.pin_tries_left -= 1
    sess.pin_verified = False
    return b"", pin_tries(inst.pin_tries_left)
