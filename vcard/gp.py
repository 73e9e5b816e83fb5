"""GlobalPlatform card content management on a selected security domain (GPC 2.3 §11), with the
choices of docs/card-protocol.md. Every handler validates before it changes anything; the card
also restores a snapshot if a handler fails part way, so a refused command changes nothing."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from vcard import sw
from vcard.apdesc import check_standard_shape, parse_description
from vcard.crypto import kcv
from vcard.runtime import Faults, PendingLoad, Session
from vcard.state import (
    APP_INSTALLED,
    APP_PERSONALIZED,
    APP_SELECTABLE,
    AREA_BYTE,
    CARD_LOCKED,
    CARD_SECURED,
    CARD_TERMINATED,
    ELF_LOADED,
    ISD_AID,
    LOCK_BIT,
    STANDARD_APS,
    STANDARD_ELFS,
    CardState,
    Instance,
    LoadFile,
)
from vcard.sw import CardError
from vcard.wire import Command, decode, read_lv_fields, tlv

Response = tuple[bytes, int]
STATUS_PAGE = 200  # bytes of E3 entries per GET STATUS answer (room left for SCP03 padding + R-MAC)
GP_RID_OID = bytes.fromhex("2A864886FC6B")


def free(state: CardState, faults: Faults, sd: bytes) -> int:
    return 0 if faults.memory_full else state.free(sd)


# --- GET DATA --------------------------------------------------------------------------------


def get_data(state: CardState, faults: Faults, sd: bytes, cmd: Command) -> Response:
    tag = (cmd.p1 << 8) | cmd.p2
    if cmd.data:
        raise CardError(sw.WRONG_LENGTH)
    if tag == 0x0042:
        return tlv(0x42, state.iin), sw.OK
    if tag == 0x0045:
        return tlv(0x45, state.cin), sw.OK
    if tag == 0x0066:
        recognition = (
            tlv(0x06, GP_RID_OID + b"\x01")
            + tlv(0x60, tlv(0x06, GP_RID_OID + b"\x02\x02\x03"))  # GP card spec 2.3
            + tlv(0x63, tlv(0x06, GP_RID_OID + b"\x03"))
            + tlv(0x64, tlv(0x06, GP_RID_OID + b"\x04\x03\x70"))  # SCP03, i = 70
        )
        return tlv(0x66, tlv(0x73, recognition)), sw.OK
    if tag == 0x00E0:
        keys = state.sds[sd].keys
        info = b"".join(tlv(0xC0, bytes([key_id, keys.version, 0x88, len(keys.enc)])) for key_id in (1, 2, 3))
        return tlv(0xE0, info), sw.OK
    if tag == 0xFF21:
        apps = sum(1 for i in state.instances.values() if i.sd == sd)
        body = (
            tlv(0x81, apps.to_bytes(2, "big"))
            + tlv(0x82, max(0, free(state, faults, sd)).to_bytes(4, "big"))
            + tlv(0x83, (2048).to_bytes(4, "big"))
            + tlv(0x84, state.sds[sd].quota.to_bytes(4, "big"))
        )
        return tlv(0xFF21, body), sw.OK
    raise CardError(sw.REFERENCED_DATA_NOT_FOUND)


# --- GET STATUS ------------------------------------------------------------------------------


def _entry(
    aid: bytes, life_cycle: int, privileges: bytes, sd: bytes | None, modules: list[bytes] | None = None
) -> bytes:
    body = tlv(0x4F, aid) + tlv(0x9F70, bytes([life_cycle]))
    if privileges:
        body += tlv(0xC5, privileges)
    if sd is not None:
        body += tlv(0xCC, sd)
    for m in modules or []:
        body += tlv(0x84, m)
    return tlv(0xE3, body)


def get_status(state: CardState, sess: Session, sd: bytes, cmd: Command) -> Response:
    if cmd.p2 == 0x03:
        if not sess.status_rest or cmd.p1 != sess.status_p1:
            raise CardError(sw.CONDITIONS)
        return _status_page(sess)
    if cmd.p2 != 0x02 or cmd.p1 not in (0x80, 0x40, 0x20, 0x10):
        raise CardError(sw.BAD_P1P2)
    items = decode(cmd.data)
    search = next((t for t in items if t.tag == 0x4F), None)
    if search is None:
        raise CardError(sw.BAD_DATA)
    prefix = search.value
    entries: list[tuple[bytes, bytes]] = []
    is_isd = sd == ISD_AID
    if cmd.p1 == 0x80:
        if not is_isd:
            raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
        entries.append((ISD_AID, _entry(ISD_AID, state.life_cycle, b"\x9e\xfe\x80", None)))
    elif cmd.p1 == 0x40:
        # The ISD, as a real card manager does (GPC 2.3 §11.4), reports every application on the
        # card: the area SDs, the standard APs (associated with the ISD, outside both areas) and
        # the card APs of both areas with their own SD in tag CC. An area SD sees only its own.
        if is_isd:
            for aid, dom in state.sds.items():
                if aid != ISD_AID:
                    entries.append((aid, _entry(aid, dom.life_cycle, b"\x80\x00\x00", ISD_AID)))
            for aid in STANDARD_APS:
                entries.append((aid, _entry(aid, APP_PERSONALIZED, b"\x00\x00\x00", ISD_AID)))
        for inst in state.instances.values():
            if is_isd or inst.sd == sd:
                entries.append((inst.aid, _entry(inst.aid, inst.life_cycle, b"\x00\x00\x00", inst.sd)))
    else:
        modules = cmd.p1 == 0x10
        if is_isd:
            for elf in STANDARD_ELFS:
                entries.append(
                    (elf, _entry(elf, ELF_LOADED, b"", ISD_AID, [elf + b"\x01"] if modules else None))
                )
        for lf in state.load_files.values():
            if is_isd or lf.sd == sd:
                entries.append(
                    (lf.aid, _entry(lf.aid, ELF_LOADED, b"", lf.sd, [lf.module] if modules else None))
                )
    matching = [e for aid, e in entries if aid.startswith(prefix)]
    if not matching:
        raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
    sess.status_rest = matching
    sess.status_p1 = cmd.p1
    return _status_page(sess)


def _status_page(sess: Session) -> Response:
    page = b""
    while sess.status_rest and (not page or len(page) + len(sess.status_rest[0]) <= STATUS_PAGE):
        page += sess.status_rest.pop(0)
    return page, sw.MORE_DATA if sess.status_rest else sw.OK


# --- INSTALL / LOAD --------------------------------------------------------------------------


def _area_instance_aid(sd: bytes, aid: bytes, prefix: bytes) -> None:
    if sd not in AREA_BYTE or len(aid) != 8 or aid[:3] != prefix or aid[3] != AREA_BYTE[sd]:
        raise CardError(sw.BAD_DATA)


def _aid_in_use(state: CardState, aid: bytes) -> bool:
    return aid in state.instances or aid in state.load_files or aid in state.sds or aid in STANDARD_ELFS


def install(state: CardState, faults: Faults, sess: Session, sd: bytes, cmd: Command) -> Response:
    if cmd.p2 != 0x00:
        raise CardError(sw.BAD_P1P2)
    if cmd.p1 == 0x02:
        return _install_for_load(state, faults, sess, sd, cmd)
    if cmd.p1 in (0x0C, 0x04):
        return _install_for_install(state, faults, sd, cmd)
    if cmd.p1 == 0x20:
        fields = read_lv_fields(cmd.data, 6)
        inst = state.instances.get(fields[2])
        if inst is None or inst.sd != sd:
            raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
        if inst.life_cycle != APP_SELECTABLE:
            raise CardError(sw.CONDITIONS)
        sess.personalising = inst.aid
        sess.store_block = 0
        return b"\x00", sw.OK
    raise CardError(sw.BAD_P1P2)


def _install_for_load(state: CardState, faults: Faults, sess: Session, sd: bytes, cmd: Command) -> Response:
    elf, target, data_hash, params, _token = read_lv_fields(cmd.data, 5)
    if target not in (b"", sd):
        raise CardError(sw.BAD_DATA)
    _area_instance_aid(sd, elf, bytes.fromhex("D392F2"))
    if _aid_in_use(state, elf):
        raise CardError(sw.CONDITIONS)
    if len(data_hash) != 32:
        raise CardError(sw.BAD_DATA)
    items = decode(params)
    ef = next((t for t in items if t.tag == 0xEF), None)
    c6 = next((t for t in ef.children() if t.tag == 0xC6), None) if ef is not None else None
    if c6 is None or not 2 <= len(c6.value) <= 4:
        raise CardError(sw.BAD_DATA)
    size = int.from_bytes(c6.value, "big")
    if size > free(state, faults, sd):
        raise CardError(sw.NOT_ENOUGH_MEMORY)
    sess.pending_load = PendingLoad(elf, sd, data_hash, size)
    return b"\x00", sw.OK


def load(state: CardState, faults: Faults, sess: Session, sd: bytes, cmd: Command) -> Response:
    pending = sess.pending_load
    if pending is None or pending.sd != sd:
        raise CardError(sw.CONDITIONS)
    if cmd.p1 not in (0x00, 0x80):
        raise CardError(sw.BAD_P1P2)
    if cmd.p2 != pending.next_block & 0xFF:
        sess.pending_load = None
        raise CardError(sw.BAD_P1P2)
    pending.data += cmd.data
    pending.next_block += 1
    if len(pending.data) > pending.size + 200:  # more than the file plus its DAP block: refuse
        sess.pending_load = None
        raise CardError(sw.NOT_ENOUGH_MEMORY)
    if cmd.p1 != 0x80:
        return b"", sw.OK
    sess.pending_load = None  # whatever happens now, the load is over
    items = decode(pending.data)
    tags = [t.tag for t in items]
    if tags != [0xE2, 0xC4]:
        raise CardError(sw.SECURITY_STATUS if 0xE2 not in tags else sw.BAD_DATA)
    dap = {t.tag: t.value for t in items[0].children()}
    block = items[1].value
    if len(block) != pending.size:
        raise CardError(sw.BAD_DATA)
    if not hmac.compare_digest(hashlib.sha256(block).digest(), pending.hash):
        raise CardError(sw.CONDITIONS)
    if dap.get(0x4F) != ISD_AID or len(dap.get(0xC3, b"")) != 64:
        raise CardError(sw.SECURITY_STATUS)
    signature = dap[0xC3]
    public = serialization.load_pem_public_key(state.dap_public_key_pem.encode())
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise CardError(sw.NO_PRECISE_DIAGNOSIS)
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public.verify(der, block, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise CardError(sw.SECURITY_STATUS) from None
    if parse_description(block).ap_type != "X":
        raise CardError(sw.BAD_DATA)
    if len(block) > free(state, faults, sd):
        raise CardError(sw.NOT_ENOUGH_MEMORY)
    state.load_files[pending.elf] = LoadFile(pending.elf, sd, block)
    return b"", sw.OK


def _install_for_install(state: CardState, faults: Faults, sd: bytes, cmd: Command) -> Response:
    elf, module, instance, privileges, params, _token = read_lv_fields(cmd.data, 6)
    if len(privileges) not in (1, 3) or privileges[0] & 0x80:
        raise CardError(sw.BAD_DATA)
    _area_instance_aid(sd, instance, bytes.fromhex("D392F1"))
    if module != elf + b"\x01":
        raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
    items = decode(params)
    c9 = next((t for t in items if t.tag == 0xC9), None)
    if c9 is None:
        raise CardError(sw.BAD_DATA)
    if elf in STANDARD_ELFS:
        desc = parse_description(c9.value)
        check_standard_shape(desc, STANDARD_ELFS[elf])
    elif elf in state.load_files and state.load_files[elf].sd == sd:
        if c9.value:
            raise CardError(sw.BAD_DATA)
        desc = parse_description(state.load_files[elf].data_block)
    else:
        raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
    if _aid_in_use(state, instance):
        raise CardError(sw.CONDITIONS)
    if desc.cost > free(state, faults, sd):
        raise CardError(sw.NOT_ENOUGH_MEMORY)
    files = {f.fid: [bytes(f.length) for _ in range(f.count)] for f in desc.files}
    state.instances[instance] = Instance(
        aid=instance,
        sd=sd,
        elf=elf,
        module=module,
        description=desc.raw,
        cost=desc.cost,
        life_cycle=APP_SELECTABLE if cmd.p1 == 0x0C else APP_INSTALLED,
        files=files,
        pin_tries_left=desc.pin.retry_limit if desc.pin else 0,
    )
    return b"\x00", sw.OK


# --- STORE DATA (personalisation) -------------------------------------------------------------

DGI_FILE, DGI_KEY, DGI_PIN = 0x0101, 0x0201, 0x0301
STORE_DATA_DGI = 0x08  # P1 b5-b4 = 01: DGI format (GPC 2.3 Table 11-89)


def _dgis(data: bytes) -> list[tuple[int, bytes]]:
    out = []
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            raise CardError(sw.BAD_DATA)
        tag = int.from_bytes(data[i : i + 2], "big")
        n = data[i + 2]
        i += 3
        if n == 0xFF:
            if i + 2 > len(data):
                raise CardError(sw.BAD_DATA)
            n = int.from_bytes(data[i : i + 2], "big")
            i += 2
        if i + n > len(data):
            raise CardError(sw.BAD_DATA)
        out.append((tag, data[i : i + n]))
        i += n
    return out


def store_data(state: CardState, sess: Session, sd: bytes, cmd: Command) -> Response:
    if sess.personalising is None:
        raise CardError(sw.CONDITIONS)
    inst = state.instances.get(sess.personalising)
    if inst is None or inst.sd != sd or inst.life_cycle != APP_SELECTABLE:
        sess.personalising = None
        raise CardError(sw.CONDITIONS)
    if cmd.p1 & 0x7F != STORE_DATA_DGI:
        raise CardError(sw.BAD_P1P2)
    if cmd.p2 != sess.store_block & 0xFF:
        raise CardError(sw.BAD_P1P2)
    if not cmd.data:
        raise CardError(sw.WRONG_LENGTH)
    desc = parse_description(inst.description)
    files = {fid: list(recs) for fid, recs in inst.files.items()}
    pin, key = inst.pin, inst.key
    for tag, value in _dgis(cmd.data):
        if tag == DGI_FILE:
            if len(value) < 5:
                raise CardError(sw.BAD_DATA)
            fid, record, offset, content = (
                int.from_bytes(value[:2], "big"),
                value[2],
                int.from_bytes(value[3:5], "big"),
                value[5:],
            )
            spec = desc.file(fid)
            if spec is None:
                raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
            index = 0 if spec.structure == 0x01 else record - 1
            if (spec.structure == 0x01) != (record == 0) or not 0 <= index < spec.count:
                raise CardError(sw.BAD_DATA)
            if offset + len(content) > spec.length:
                raise CardError(sw.BAD_DATA)
            old = files[fid][index]
            files[fid][index] = old[:offset] + content + old[offset + len(content) :]
        elif tag == DGI_KEY:
            if len(value) not in (17, 25, 33) or value[0] != 0x01:
                raise CardError(sw.BAD_DATA)
            key = value[1:]
        elif tag == DGI_PIN:
            text = value.decode("ascii", "replace")
            policy = desc.pin
            if (
                policy is None
                or not text.isdigit()
                or not policy.min_length <= len(text) <= policy.max_length
            ):
                raise CardError(sw.BAD_DATA)
            pin = text
        else:
            raise CardError(sw.REFERENCED_DATA_NOT_FOUND)
    last = bool(cmd.p1 & 0x80)
    if last:
        needs_key = any(f.read_rule in (2, 3) or f.update_rule in (2, 3) for f in desc.files)
        if (desc.pin is not None and pin is None) or (needs_key and key is None):
            raise CardError(sw.CONDITIONS)
    inst.files, inst.pin, inst.key = files, pin, key
    sess.store_block += 1
    if last:
        inst.life_cycle = APP_PERSONALIZED
        inst.pin_tries_left = desc.pin.retry_limit if desc.pin else 0
        sess.personalising = None
    return b"", sw.OK


# --- DELETE / PUT KEY / SET STATUS -------------------------------------------------------------


def delete(state: CardState, sd: bytes, cmd: Command) -> Response:
    if cmd.p1 != 0x00 or cmd.p2 not in (0x00, 0x80):
        raise CardError(sw.BAD_P1P2)
    items = decode(cmd.data)
    if len(items) != 1 or items[0].tag != 0x4F or not 5 <= len(items[0].value) <= 16:
        raise CardError(sw.BAD_DATA)
    aid = items[0].value
    inst = state.instances.get(aid)
    if inst is not None and inst.sd == sd:
        del state.instances[aid]
        return b"\x00", sw.OK
    lf = state.load_files.get(aid)
    if lf is not None and lf.sd == sd:
        dependants = [i.aid for i in state.instances.values() if i.elf == aid]
        if dependants and cmd.p2 != 0x80:
            raise CardError(sw.CONDITIONS)
        for d in dependants:
            del state.instances[d]
        del state.load_files[aid]
        return b"\x00", sw.OK
    if aid in STANDARD_ELFS or aid in state.sds:
        raise CardError(sw.CONDITIONS)
    raise CardError(sw.REFERENCED_DATA_NOT_FOUND)


def put_key(state: CardState, sess: Session, sd: bytes, cmd: Command) -> Response:
    dom = state.sds[sd]
    channel = sess.channel
    assert channel is not None
    if cmd.p1 not in (0x00, dom.keys.version) or cmd.p2 != 0x81:
        raise CardError(sw.BAD_P1P2)
    data = cmd.data
    if len(data) < 1:
        raise CardError(sw.WRONG_LENGTH)
    new_version = data[0]
    if not 0x01 <= new_version <= 0x7F:
        raise CardError(sw.BAD_DATA)
    keys = []
    i = 1
    for _ in range(3):
        if i + 3 > len(data) or data[i] != 0x88:
            raise CardError(sw.BAD_DATA)
        length = data[i + 1]
        key_len = data[i + 2]
        if key_len not in (16, 24, 32) or length != key_len + 1 or i + 2 + length + 4 > len(data):
            raise CardError(sw.BAD_DATA)
        cryptogram = data[i + 3 : i + 2 + length]
        check = data[i + 2 + length : i + 2 + length + 4]
        key = channel.decrypt_key(cryptogram)
        if check != b"\x03" + kcv(key):
            raise CardError(sw.BAD_DATA)
        keys.append(key)
        i += 2 + length + 4
    if i != len(data) or len({len(k) for k in keys}) != 1:
        raise CardError(sw.BAD_DATA)
    dom.keys = type(dom.keys)(new_version, keys[0], keys[1], keys[2])
    return bytes([new_version]) + b"".join(kcv(k) for k in keys), sw.OK


def set_status(state: CardState, sd: bytes, cmd: Command) -> Response:
    scope, target = cmd.p1, cmd.p2
    if scope == 0x80:
        if sd != ISD_AID or cmd.data:
            raise CardError(sw.SECURITY_STATUS if sd != ISD_AID else sw.BAD_DATA)
        if state.life_cycle == CARD_TERMINATED or target not in (CARD_SECURED, CARD_LOCKED, CARD_TERMINATED):
            raise CardError(sw.BAD_P1P2)
        state.life_cycle = target
        return b"", sw.OK
    if scope not in (0x40, 0x60):
        raise CardError(sw.BAD_P1P2)
    aid = cmd.data
    lock = bool(target & LOCK_BIT)
    if aid in state.sds:
        if sd != ISD_AID or aid == ISD_AID:
            raise CardError(sw.SECURITY_STATUS)
        dom = state.sds[aid]
        dom.life_cycle = dom.life_cycle | LOCK_BIT if lock else dom.life_cycle & ~LOCK_BIT
        if scope == 0x60:
            for inst in state.instances.values():
                if inst.sd == aid:
                    inst.life_cycle = inst.life_cycle | LOCK_BIT if lock else inst.life_cycle & ~LOCK_BIT
        return b"", sw.OK
    app = state.instances.get(aid)
    if app is None or scope != 0x40:
        raise CardError(sw.REFERENCED_DATA_NOT_FOUND if app is None else sw.BAD_P1P2)
    if sd not in (ISD_AID, app.sd):
        raise CardError(sw.SECURITY_STATUS)
    app.life_cycle = app.life_cycle | LOCK_BIT if lock else app.life_cycle & ~LOCK_BIT
    return b"", sw.OK
