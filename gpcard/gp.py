"""GlobalPlatform card content management commands (GPC 2.3 §11) and their response parsers.

Builders return plain :class:`CommandAPDU` objects (wrap them with an SCP03 session when a secure
channel is needed); parsers take response data and raise :class:`GPError` when it does not parse.
Choices GP leaves open follow docs/card-protocol.md.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from gpcard import tlv
from gpcard.aid import AID, AIDError
from gpcard.apdu import SHORT_LE_MAX, CommandAPDU
from gpcard.scp03 import aes_kcv

__all__ = [
    "GPError",
    "ApplicationLifeCycle",
    "CardLifeCycle",
    "CardResources",
    "KeyInfo",
    "StatusEntry",
    "StatusKind",
    "delete",
    "dgi",
    "dgi_ap_key",
    "dgi_file_content",
    "dgi_pin",
    "file_content_dgis",
    "get_data",
    "get_status",
    "install_for_install",
    "install_for_load",
    "install_for_personalization",
    "install_parameters",
    "load_commands",
    "load_parameters",
    "parse_card_data",
    "parse_cin",
    "parse_dgis",
    "parse_get_status",
    "parse_iin",
    "parse_key_information",
    "parse_put_key_response",
    "parse_resources",
    "put_key",
    "select",
    "set_status",
    "store_data_commands",
]

CLA_GP = 0x80
CLA_ISO = 0x00

TAG_IIN = 0x0042
TAG_CIN = 0x0045
TAG_CARD_DATA = 0x0066
TAG_KEY_INFORMATION = 0x00E0
TAG_RESOURCES = 0xFF21

# Largest plain data field that still fits a short APDU under SCP03 level 33 (pad + 8-byte MAC).
MAX_SECURE_DATA = 239


class GPError(ValueError):
    """A GlobalPlatform response (or a request to build a command) that does not make sense."""


def _aid(value: AID | bytes) -> bytes:
    raw = bytes(value)
    try:
        AID(raw)
    except AIDError as e:
        raise GPError(str(e)) from None
    return raw


def _lv(value: bytes) -> bytes:
    """Length-prefixed field inside INSTALL data: BER length (1-3 bytes), docs/card-protocol.md."""
    return tlv.encode_length(len(value)) + value


# --- SELECT / GET DATA ------------------------------------------------------------------------


def select(aid: AID | bytes) -> CommandAPDU:
    """SELECT by AID, first or only occurrence (00 A4 04 00)."""
    return CommandAPDU(CLA_ISO, 0xA4, 0x04, 0x00, _aid(aid), le=SHORT_LE_MAX)


def get_data(tag: int) -> CommandAPDU:
    """GET DATA (80 CA) for a one- or two-byte tag: 0042 IIN, 0045 CIN, 0066, 00E0, FF21."""
    if not 0 <= tag <= 0xFFFF:
        raise GPError(f"GET DATA tag {tag:#x} must fit P1-P2")
    return CommandAPDU(CLA_GP, 0xCA, tag >> 8, tag & 0xFF, le=SHORT_LE_MAX)


def _single(data: bytes, tag: int, what: str) -> tlv.TLV:
    try:
        return tlv.decode_single(data, tag)
    except tlv.TLVError as e:
        raise GPError(f"{what}: {e}") from None


def parse_iin(data: bytes) -> bytes:
    """The IIN value from the GET DATA 0042 response (``42 L IIN``)."""
    value = _single(data, 0x42, "IIN").value
    if not value:
        raise GPError("IIN is empty")
    return value


def parse_cin(data: bytes) -> bytes:
    """The CIN value (10 bytes on this card) from the GET DATA 0045 response (``45 L CIN``)."""
    value = _single(data, 0x45, "CIN").value
    if len(value) != 10:
        raise GPError(f"CIN has {len(value)} bytes, this card's CIN has 10")
    return value


def parse_card_data(data: bytes) -> dict[int, bytes]:
    """Card recognition data (GET DATA 0066: ``66 { 73 { 06 OID, 60.., 63.., 64.., ... } }``).

    Returns the primitive objects found under tag 73 by tag (for 6x application tags, the OID
    they wrap)."""
    outer = _single(data, 0x66, "card data")
    try:
        inner = tlv.find(outer.children(), 0x73)
        if inner is None:
            raise GPError("card data has no card recognition data (73)")
        out: dict[int, bytes] = {}
        for item in inner.children():
            if item.constructed:
                oid = tlv.find(item.children(), 0x06)
                out[item.tag] = oid.value if oid is not None else item.value
            else:
                out[item.tag] = item.value
        return out
    except tlv.TLVError as e:
        raise GPError(f"card data: {e}") from None


@dataclass(frozen=True)
class KeyInfo:
    key_id: int
    version: int
    components: tuple[tuple[int, int], ...]  # (key type, key length in bytes)

    @property
    def key_type(self) -> int:
        return self.components[0][0]

    @property
    def key_length(self) -> int:
        return self.components[0][1]


def parse_key_information(data: bytes) -> list[KeyInfo]:
    """Key information template (GET DATA 00E0: ``E0 { C0 id kvn (type len)+ ... }``)."""
    outer = _single(data, 0xE0, "key information")
    try:
        items = outer.children()
    except tlv.TLVError as e:
        raise GPError(f"key information: {e}") from None
    keys = []
    for item in items:
        if item.tag != 0xC0:
            raise GPError(f"key information: unexpected tag {item.tag:X}")
        v = item.value
        if len(v) < 4 or len(v) % 2:
            raise GPError(f"key information entry has {len(v)} bytes")
        pairs = tuple((v[i], v[i + 1]) for i in range(2, len(v), 2))
        keys.append(KeyInfo(v[0], v[1], pairs))
    return keys


@dataclass(frozen=True)
class CardResources:
    """Extended card resources (GET DATA FF21) of the selected SD: its quota and free memory."""

    applications: int
    free_nonvolatile: int
    free_volatile: int
    quota: int

    @property
    def used(self) -> int:
        return self.quota - self.free_nonvolatile


def parse_resources(data: bytes) -> CardResources:
    """``FF21 { 81 apps(2) 82 free NVM(4) 83 free RAM(4) 84 quota(4) }`` (docs/card-protocol.md)."""
    outer = _single(data, 0xFF21, "card resources")
    try:
        items = {t.tag: t.value for t in outer.children()}
    except tlv.TLVError as e:
        raise GPError(f"card resources: {e}") from None
    sizes = {0x81: 2, 0x82: 4, 0x83: 4, 0x84: 4}
    values = {}
    for tag, size in sizes.items():
        if tag not in items:
            raise GPError(f"card resources: missing tag {tag:02X}")
        if len(items[tag]) != size:
            raise GPError(f"card resources: tag {tag:02X} has {len(items[tag])} bytes, expected {size}")
        values[tag] = int.from_bytes(items[tag], "big")
    return CardResources(values[0x81], values[0x82], values[0x83], values[0x84])


# --- GET STATUS -------------------------------------------------------------------------------


class StatusKind(enum.IntEnum):
    """GET STATUS P1."""

    ISD = 0x80
    APPLICATIONS = 0x40  # applications and security domains
    LOAD_FILES = 0x20
    LOAD_FILES_AND_MODULES = 0x10


class ApplicationLifeCycle(enum.IntEnum):
    INSTALLED = 0x03
    SELECTABLE = 0x07
    PERSONALIZED = 0x0F
    LOCKED = 0x83  # b8 set: locked (the low bits keep the state before locking)


class CardLifeCycle(enum.IntEnum):
    OP_READY = 0x01
    INITIALIZED = 0x07
    SECURED = 0x0F
    CARD_LOCKED = 0x7F
    TERMINATED = 0xFF


@dataclass(frozen=True)
class StatusEntry:
    aid: AID
    life_cycle: int
    privileges: bytes = b""
    associated_sd: AID | None = None
    version: bytes = b""
    modules: tuple[AID, ...] = ()

    @property
    def locked(self) -> bool:
        return bool(self.life_cycle & 0x80) and self.life_cycle != CardLifeCycle.TERMINATED

    @property
    def is_security_domain(self) -> bool:
        return bool(self.privileges) and bool(self.privileges[0] & 0x80)


def get_status(kind: StatusKind | int, *, next_part: bool = False, aid_filter: bytes = b"") -> CommandAPDU:
    """GET STATUS (80 F2 P1 P2) in TLV format, search criteria ``4F <filter>`` (``4F 00`` = all).

    ``next_part`` (P2 03) fetches the rest after a 6310 answer."""
    p2 = 0x03 if next_part else 0x02
    return CommandAPDU(CLA_GP, 0xF2, int(kind), p2, tlv.encode(0x4F, aid_filter), le=SHORT_LE_MAX)


def parse_get_status(data: bytes) -> list[StatusEntry]:
    """Parse one GET STATUS response (a run of ``E3`` entries; 6310 pages are parsed separately)."""
    try:
        items = tlv.decode(data)
    except tlv.TLVError as e:
        raise GPError(f"GET STATUS: {e}") from None
    entries = []
    for item in items:
        if item.tag != 0xE3:
            raise GPError(f"GET STATUS: expected E3 entries, found {item.tag:X} at offset {item.offset}")
        try:
            fields = item.children()
        except tlv.TLVError as e:
            raise GPError(f"GET STATUS: {e}") from None
        found: dict[int, bytes] = {}
        modules = []
        for f in fields:
            if f.tag == 0x84:
                modules.append(f.value)
            elif f.tag in found:
                raise GPError(f"GET STATUS: tag {f.tag:X} twice in one entry at offset {f.offset}")
            else:
                found[f.tag] = f.value
        if 0x4F not in found or 0x9F70 not in found:
            raise GPError(f"GET STATUS entry at offset {item.offset} lacks AID (4F) or life cycle (9F70)")
        if len(found[0x9F70]) != 1:
            raise GPError("GET STATUS: life cycle (9F70) must be one byte")
        privileges = found.get(0xC5, b"")
        if len(privileges) not in (0, 1, 3):
            raise GPError(f"GET STATUS: privileges (C5) of {len(privileges)} bytes")
        try:
            entries.append(
                StatusEntry(
                    aid=AID(found[0x4F]),
                    life_cycle=found[0x9F70][0],
                    privileges=privileges,
                    associated_sd=AID(found[0xCC]) if 0xCC in found else None,
                    version=found.get(0xCE, b""),
                    modules=tuple(AID(m) for m in modules),
                )
            )
        except AIDError as e:
            raise GPError(f"GET STATUS entry at offset {item.offset}: {e}") from None
    return entries


# --- INSTALL / LOAD / DELETE ------------------------------------------------------------------


def load_parameters(code_size: int) -> bytes:
    """``EF { C6 size }`` with the size in 2 to 4 bytes (docs/card-protocol.md)."""
    if not 0 <= code_size <= 0xFFFFFFFF:
        raise GPError(f"load file size {code_size} does not fit 4 bytes")
    n = max(2, (code_size.bit_length() + 7) // 8)
    return tlv.encode(0xEF, tlv.encode(0xC6, code_size.to_bytes(n, "big")))


def install_for_load(
    load_file_aid: AID | bytes,
    sd_aid: AID | bytes,
    *,
    data_block_hash: bytes = b"",
    parameters: bytes = b"",
    token: bytes = b"",
) -> CommandAPDU:
    """INSTALL [for load] (80 E6 02 00)."""
    data = _lv(_aid(load_file_aid)) + _lv(_aid(sd_aid)) + _lv(data_block_hash) + _lv(parameters) + _lv(token)
    return CommandAPDU(CLA_GP, 0xE6, 0x02, 0x00, data, le=SHORT_LE_MAX)


def install_parameters(application_specific: bytes = b"") -> bytes:
    """The install parameters field: ``C9 <application specific parameters>`` (``C9 00`` if none)."""
    return tlv.encode(0xC9, application_specific)


def install_for_install(
    load_file_aid: AID | bytes,
    module_aid: AID | bytes,
    instance_aid: AID | bytes,
    *,
    privileges: bytes = b"\x00",
    parameters: bytes = b"\xc9\x00",
    token: bytes = b"",
    make_selectable: bool = True,
) -> CommandAPDU:
    """INSTALL [for install (and make selectable)] (80 E6 0C 00, or 04 without make selectable).

    ``parameters`` is the whole install parameters field, e.g. :func:`install_parameters`."""
    if len(privileges) not in (1, 3):
        raise GPError(f"privileges are 1 or 3 bytes, got {len(privileges)}")
    data = (
        _lv(_aid(load_file_aid))
        + _lv(_aid(module_aid))
        + _lv(_aid(instance_aid))
        + _lv(privileges)
        + _lv(parameters)
        + _lv(token)
    )
    return CommandAPDU(CLA_GP, 0xE6, 0x0C if make_selectable else 0x04, 0x00, data, le=SHORT_LE_MAX)


def install_for_personalization(instance_aid: AID | bytes) -> CommandAPDU:
    """INSTALL [for personalization] (80 E6 20 00): ``00 00 L AID 00 00 00``."""
    data = b"\x00\x00" + _lv(_aid(instance_aid)) + b"\x00\x00\x00"
    return CommandAPDU(CLA_GP, 0xE6, 0x20, 0x00, data, le=SHORT_LE_MAX)


def load_commands(blocks: Sequence[bytes]) -> list[CommandAPDU]:
    """LOAD (80 E8): P1 80 on the last block, P2 the block number."""
    if not blocks:
        raise GPError("nothing to load")
    if len(blocks) > 256:
        raise GPError(f"{len(blocks)} LOAD blocks; P2 numbers at most 256")
    last = len(blocks) - 1
    return [
        CommandAPDU(CLA_GP, 0xE8, 0x80 if i == last else 0x00, i, bytes(b), le=SHORT_LE_MAX)
        for i, b in enumerate(blocks)
    ]


def delete(aid: AID | bytes, *, related: bool = False) -> CommandAPDU:
    """DELETE (80 E4 00 00, ``4F AID``); ``related`` (P2 80) deletes a load file with its instances."""
    return CommandAPDU(
        CLA_GP, 0xE4, 0x00, 0x80 if related else 0x00, tlv.encode(0x4F, _aid(aid)), le=SHORT_LE_MAX
    )


def set_status(scope: int, state: int, aid: AID | bytes = b"") -> CommandAPDU:
    """SET STATUS (80 F0): scope 80 card/ISD, 40 application or SD, 60 SD and its applications."""
    if scope not in (0x80, 0x40, 0x60):
        raise GPError(f"SET STATUS scope {scope:02X} is not 80, 40 or 60")
    if not 0 <= state <= 0xFF:
        raise GPError("life cycle state is one byte")
    data = _aid(aid) if aid else b""
    if scope != 0x80 and not data:
        raise GPError("SET STATUS of an application or SD needs its AID")
    return CommandAPDU(CLA_GP, 0xF0, scope, state, data)


# --- STORE DATA and DGIs ----------------------------------------------------------------------

STORE_DATA_DGI = 0x08  # P1 b5-b4 = 01
DGI_FILE_CONTENT = 0x0101
DGI_AP_KEY = 0x0201
DGI_PIN = 0x0301
KEY_USAGE_MUTUAL_AUTH = 0x01
DGI_FILE_HEADER = 5  # FID(2) ‖ record(1) ‖ offset(2)


def dgi(tag: int, value: bytes) -> bytes:
    """One DGI (EMV CPS): 2-byte tag, length in 1 byte (< 255) or FF ‖ 2 bytes, value."""
    if not 0 <= tag <= 0xFFFF:
        raise GPError(f"DGI {tag:#x} must be two bytes")
    n = len(value)
    if n > 0xFFFF:
        raise GPError(f"DGI value of {n} bytes is too long")
    length = bytes([n]) if n < 0xFF else b"\xff" + n.to_bytes(2, "big")
    return tag.to_bytes(2, "big") + length + value


def parse_dgis(data: bytes) -> list[tuple[int, bytes]]:
    """Split a STORE DATA field into (DGI, value) pairs (for tests and tools)."""
    out = []
    i = 0
    while i < len(data):
        if i + 3 > len(data):
            raise GPError(f"DGI header truncated at offset {i}")
        tag = int.from_bytes(data[i : i + 2], "big")
        n = data[i + 2]
        i += 3
        if n == 0xFF:
            if i + 2 > len(data):
                raise GPError(f"DGI length truncated at offset {i}")
            n = int.from_bytes(data[i : i + 2], "big")
            i += 2
        if i + n > len(data):
            raise GPError(f"DGI {tag:04X} needs {n} bytes, {len(data) - i} left")
        out.append((tag, data[i : i + n]))
        i += n
    return out


def dgi_file_content(fid: int, record: int, offset: int, data: bytes) -> bytes:
    """DGI 0101: FID(2) ‖ record number(1, 00 for binary) ‖ offset(2) ‖ data."""
    if not 0 <= fid <= 0xFFFF or not 0 <= record <= 0xFF or not 0 <= offset <= 0xFFFF:
        raise GPError("FID/offset must fit 2 bytes and the record number 1 byte")
    return dgi(DGI_FILE_CONTENT, fid.to_bytes(2, "big") + bytes([record]) + offset.to_bytes(2, "big") + data)


def file_content_dgis(
    fid: int, record: int, data: bytes, *, offset: int = 0, max_dgi: int = MAX_SECURE_DATA
) -> list[bytes]:
    """File content as 0101 DGIs of at most ``max_dgi`` bytes each, at increasing offsets."""
    chunk = max_dgi - 3 - DGI_FILE_HEADER
    if chunk < 1:
        raise GPError(f"max_dgi {max_dgi} leaves no room for content")
    if not data:
        return [dgi_file_content(fid, record, offset, b"")]
    return [
        dgi_file_content(fid, record, offset + i, data[i : i + chunk]) for i in range(0, len(data), chunk)
    ]


def dgi_ap_key(key: bytes, usage: int = KEY_USAGE_MUTUAL_AUTH) -> bytes:
    """DGI 0201: key usage ‖ AES key (16/24/32 bytes). Travels only under C-DECRYPTION."""
    if len(key) not in (16, 24, 32):
        raise GPError(f"an AP key is an AES key of 16, 24 or 32 bytes, not {len(key)}")
    return dgi(DGI_AP_KEY, bytes([usage]) + key)


def dgi_pin(pin: str) -> bytes:
    """DGI 0301: the PIN in ASCII digits. Travels only under C-DECRYPTION."""
    if not pin.isascii() or not pin.isdigit():
        raise GPError("a PIN is ASCII digits only")
    return dgi(DGI_PIN, pin.encode("ascii"))


def store_data_commands(dgis: Iterable[bytes], *, max_data: int = MAX_SECURE_DATA) -> list[CommandAPDU]:
    """STORE DATA (80 E2) commands carrying whole DGIs, packed up to ``max_data`` bytes each.

    P1 = 08 (b5-b4 = 01: DGI format, GPC 2.3 Table 11-89) | 80 on the last block; P2 = block
    number from 00."""
    blocks: list[bytes] = []
    current = b""
    for item in dgis:
        if len(item) > max_data:
            raise GPError(f"a DGI of {len(item)} bytes exceeds one STORE DATA block ({max_data})")
        if current and len(current) + len(item) > max_data:
            blocks.append(current)
            current = b""
        current += item
    if current:
        blocks.append(current)
    if not blocks:
        raise GPError("no DGIs to store")
    if len(blocks) > 256:
        raise GPError(f"{len(blocks)} STORE DATA blocks; P2 numbers at most 256")
    last = len(blocks) - 1
    return [
        CommandAPDU(CLA_GP, 0xE2, STORE_DATA_DGI | (0x80 if i == last else 0x00), i, b, le=SHORT_LE_MAX)
        for i, b in enumerate(blocks)
    ]


# --- PUT KEY ----------------------------------------------------------------------------------

KEY_TYPE_AES = 0x88


def put_key(
    new_version: int,
    keys: Sequence[bytes],
    encrypt: Callable[[bytes], bytes],
    *,
    old_version: int = 0x00,
    first_key_id: int = 0x01,
) -> CommandAPDU:
    """PUT KEY (80 D8) for AES keys: ``new kvn ‖ { 88 L len(key) E(key) 03 KCV }*``.

    ``encrypt`` encrypts a key with the static DEK (``SCP03Session.encrypt_key``). P1 is the
    version replaced (00 = add), P2 the first key id, b8 set when several keys follow."""
    if not keys:
        raise GPError("no keys to put")
    if not 0x01 <= new_version <= 0x7F or not 0 <= old_version <= 0x7F:
        raise GPError("key versions are 01..7F (00 = new key set)")
    data = bytes([new_version])
    for key in keys:
        if len(key) not in (16, 24, 32):
            raise GPError(f"AES keys have 16, 24 or 32 bytes, not {len(key)}")
        cryptogram = bytes(encrypt(key))
        data += bytes([KEY_TYPE_AES, len(cryptogram) + 1, len(key)]) + cryptogram + b"\x03" + aes_kcv(key)
    p2 = first_key_id | (0x80 if len(keys) > 1 else 0x00)
    return CommandAPDU(CLA_GP, 0xD8, old_version, p2, data, le=SHORT_LE_MAX)


def parse_put_key_response(data: bytes, new_version: int, keys: Sequence[bytes]) -> None:
    """Check the PUT KEY answer: the new key version then the KCV of each key."""
    expected = bytes([new_version]) + b"".join(aes_kcv(k) for k in keys)
    if bytes(data) != expected:
        raise GPError("PUT KEY answer does not confirm the key version and key check values")
