"""Application identifiers (ISO/IEC 7816-5) and the AIDs this system knows (docs/card-protocol.md)."""

from __future__ import annotations

import enum
import string
from dataclasses import dataclass

__all__ = [
    "AID",
    "AIDError",
    "Area",
    "AREA_SD_AIDS",
    "CARD_SURFACE_AP_AID",
    "EXTENDED_AREA_SD_AID",
    "ISD_AID",
    "JPKI_AP_AID",
    "JUKI_AP_AID",
    "LOCAL_AREA_SD_AID",
    "STANDARD_AP_AIDS",
    "STANDARD_ELF_AIDS",
    "STANDARD_MODULE_AIDS",
    "TEXT_INPUT_AP_AID",
    "custom_module_aid",
    "instance_aid",
    "load_file_aid",
]


class AIDError(ValueError):
    """Not a valid AID (length 5..16 bytes, hex text)."""


@dataclass(frozen=True, order=True)
class AID:
    """5 to 16 bytes: a 5-byte registered application provider id (RID) and a PIX of 0..11 bytes."""

    value: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.value, bytes):
            object.__setattr__(self, "value", bytes(self.value))
        if not 5 <= len(self.value) <= 16:
            raise AIDError(f"an AID has 5 to 16 bytes, not {len(self.value)}")

    @classmethod
    def from_hex(cls, text: str) -> AID:
        """Parse hex such as ``"A000000151000000"`` or ``"A0 00 00 01 51"`` (spaces/colons ignored)."""
        cleaned = "".join(ch for ch in text if ch not in " :\t\n")
        bad = next((ch for ch in cleaned if ch not in string.hexdigits), None)
        if bad is not None:
            raise AIDError(f"AID text {text!r} has a non-hex character {bad!r}")
        if len(cleaned) % 2:
            raise AIDError(f"AID text {text!r} has an odd number of hex digits")
        return cls(bytes.fromhex(cleaned))

    @property
    def rid(self) -> bytes:
        return self.value[:5]

    @property
    def pix(self) -> bytes:
        return self.value[5:]

    def hex(self) -> str:
        """Upper-case hex, no separators (the form used in logs, URLs and the database)."""
        return self.value.hex().upper()

    def __bytes__(self) -> bytes:
        return self.value

    def __len__(self) -> int:
        return len(self.value)

    def __str__(self) -> str:
        return self.hex()

    def __add__(self, suffix: bytes) -> AID:
        return AID(self.value + bytes(suffix))


def _aid(text: str) -> AID:
    return AID.from_hex(text)


ISD_AID = _aid("A000000151000000")
LOCAL_AREA_SD_AID = _aid("D392100031000201")
EXTENDED_AREA_SD_AID = _aid("D392100031000202")

ELF_TYPE_A_AID = _aid("D39210003100030A")
ELF_TYPE_C_AID = _aid("D39210003100030C")
ELF_TYPE_D_AID = _aid("D39210003100030D")
STANDARD_ELF_AIDS: dict[str, AID] = {"A": ELF_TYPE_A_AID, "C": ELF_TYPE_C_AID, "D": ELF_TYPE_D_AID}
# The executable module in each standard load file: the load file AID + 01.
STANDARD_MODULE_AIDS: dict[str, AID] = {t: a + b"\x01" for t, a in STANDARD_ELF_AIDS.items()}

JPKI_AP_AID = _aid("D392F000260100000001")
TEXT_INPUT_AP_AID = _aid("D3921000310001010408")
CARD_SURFACE_AP_AID = _aid("D3921000310001010402")
JUKI_AP_AID = _aid("D3921000310001010401")
# Outside both areas: this system never selects them.
STANDARD_AP_AIDS: tuple[AID, ...] = (JPKI_AP_AID, TEXT_INPUT_AP_AID, CARD_SURFACE_AP_AID, JUKI_AP_AID)

INSTANCE_PREFIX = bytes.fromhex("D392F1")
CUSTOM_LOAD_FILE_PREFIX = bytes.fromhex("D392F2")


class Area(enum.IntEnum):
    """The two card areas (each a supplementary security domain with its own keys and quota)."""

    LOCAL = 0x01  # 地域住民向け領域
    EXTENDED = 0x02  # 拡張利用領域

    @property
    def sd_aid(self) -> AID:
        return AREA_SD_AIDS[self]


AREA_SD_AIDS: dict[Area, AID] = {Area.LOCAL: LOCAL_AREA_SD_AID, Area.EXTENDED: EXTENDED_AREA_SD_AID}


def _serial_bytes(serial: int) -> bytes:
    if not 0 <= serial <= 0xFFFFFFFF:
        raise AIDError(f"serial {serial} does not fit in 4 bytes")
    return serial.to_bytes(4, "big")


def _area_byte(area: Area | int) -> bytes:
    try:
        return bytes([Area(area)])
    except ValueError:
        raise AIDError(f"area must be 01 (local) or 02 (extended), not {area!r}") from None


def instance_aid(area: Area | int, serial: int) -> AID:
    """Card AP instance AID: D392F1 ‖ area ‖ 4-byte serial (9 bytes)."""
    return AID(INSTANCE_PREFIX + _area_byte(area) + _serial_bytes(serial))


def load_file_aid(area: Area | int, serial: int) -> AID:
    """Custom card AP load file AID: D392F2 ‖ area ‖ the instance's 4-byte serial."""
    return AID(CUSTOM_LOAD_FILE_PREFIX + _area_byte(area) + _serial_bytes(serial))


def custom_module_aid(area: Area | int, serial: int) -> AID:
    """The executable module in a custom load file: the load file AID + 01 (as for standard ones)."""
    return load_file_aid(area, serial) + b"\x01"
