"""The card's non-volatile memory: what survives a reset or a restart (JSON, one file per card).

Everything volatile (selection, secure channel, PIN verified, pending LOAD) lives in the session
object of :mod:`vcard.card`, so a reset or a torn command simply forgets it."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcard.scp03 import StaticKeySet

ISD_AID = bytes.fromhex("A000000151000000")
LOCAL_SD_AID = bytes.fromhex("D392100031000201")
EXTENDED_SD_AID = bytes.fromhex("D392100031000202")
JPKI_AID = bytes.fromhex("D392F000260100000001")
TEXT_INPUT_AID = bytes.fromhex("D3921000310001010408")
CARD_SURFACE_AID = bytes.fromhex("D3921000310001010402")
JUKI_AID = bytes.fromhex("D3921000310001010401")
STANDARD_APS = {
    JPKI_AID: "JPKI",
    TEXT_INPUT_AID: "text input",
    CARD_SURFACE_AID: "card surface",
    JUKI_AID: "住基",
}
STANDARD_ELFS = {
    bytes.fromhex("D39210003100030A"): "A",
    bytes.fromhex("D39210003100030C"): "C",
    bytes.fromhex("D39210003100030D"): "D",
}
AREA_BYTE = {LOCAL_SD_AID: 0x01, EXTENDED_SD_AID: 0x02}

# Life cycle states (GPC 2.3 §5)
CARD_SECURED, CARD_LOCKED, CARD_TERMINATED = 0x0F, 0x7F, 0xFF
SD_PERSONALIZED = 0x0F
APP_INSTALLED, APP_SELECTABLE, APP_PERSONALIZED = 0x03, 0x07, 0x0F
LOCK_BIT = 0x80
ELF_LOADED = 0x01


def _keys_to(k: StaticKeySet) -> dict[str, Any]:
    return {"version": k.version, "enc": k.enc.hex(), "mac": k.mac.hex(), "dek": k.dek.hex()}


def _keys_from(d: dict[str, Any]) -> StaticKeySet:
    return StaticKeySet(
        d["version"], bytes.fromhex(d["enc"]), bytes.fromhex(d["mac"]), bytes.fromhex(d["dek"])
    )


@dataclass
class SecurityDomain:
    aid: bytes
    keys: StaticKeySet
    quota: int
    life_cycle: int = SD_PERSONALIZED
    sequence_counter: int = 0

    @property
    def locked(self) -> bool:
        return bool(self.life_cycle & LOCK_BIT)


@dataclass
class LoadFile:
    aid: bytes
    sd: bytes
    data_block: bytes

    @property
    def module(self) -> bytes:
        return self.aid + b"\x01"


@dataclass
class Instance:
    aid: bytes
    sd: bytes
    elf: bytes
    module: bytes
    description: bytes
    cost: int
    life_cycle: int = APP_SELECTABLE
    files: dict[int, list[bytes]] = field(default_factory=dict)  # binary: one entry; records: one per record
    pin: str | None = None
    pin_tries_left: int = 0
    key: bytes | None = None
    sequence_counter: int = 0


@dataclass
class JpkiPin:
    value: str
    limit: int
    left: int


@dataclass
class CardState:
    iin: bytes
    cin: bytes
    dap_public_key_pem: str
    sds: dict[bytes, SecurityDomain]
    jpki_files: dict[int, bytes]
    jpki_pins: dict[int, JpkiPin]
    life_cycle: int = CARD_SECURED
    load_files: dict[bytes, LoadFile] = field(default_factory=dict)
    instances: dict[bytes, Instance] = field(default_factory=dict)
    standard_ap_log: list[str] = field(default_factory=list)  # every APDU addressed to a standard AP

    # --- memory accounting ---------------------------------------------------------------------

    def used(self, sd: bytes) -> int:
        return sum(i.cost for i in self.instances.values() if i.sd == sd) + sum(
            len(f.data_block) for f in self.load_files.values() if f.sd == sd
        )

    def free(self, sd: bytes) -> int:
        return self.sds[sd].quota - self.used(sd)

    # --- JSON ------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": 1,
            "iin": self.iin.hex(),
            "cin": self.cin.hex(),
            "life_cycle": self.life_cycle,
            "dap_public_key_pem": self.dap_public_key_pem,
            "sds": [
                {
                    "aid": s.aid.hex(),
                    "keys": _keys_to(s.keys),
                    "quota": s.quota,
                    "life_cycle": s.life_cycle,
                    "sequence_counter": s.sequence_counter,
                }
                for s in self.sds.values()
            ],
            "load_files": [
                {"aid": f.aid.hex(), "sd": f.sd.hex(), "data_block": f.data_block.hex()}
                for f in self.load_files.values()
            ],
            "instances": [
                {
                    "aid": i.aid.hex(),
                    "sd": i.sd.hex(),
                    "elf": i.elf.hex(),
                    "module": i.module.hex(),
                    "description": i.description.hex(),
                    "cost": i.cost,
                    "life_cycle": i.life_cycle,
                    "files": {f"{fid:04X}": [r.hex() for r in recs] for fid, recs in i.files.items()},
                    "pin": i.pin,
                    "pin_tries_left": i.pin_tries_left,
                    "key": i.key.hex() if i.key is not None else None,
                    "sequence_counter": i.sequence_counter,
                }
                for i in self.instances.values()
            ],
            "jpki_files": {f"{fid:04X}": data.hex() for fid, data in self.jpki_files.items()},
            "jpki_pins": {
                f"{fid:04X}": {"value": p.value, "limit": p.limit, "left": p.left}
                for fid, p in self.jpki_pins.items()
            },
            "standard_ap_log": self.standard_ap_log,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CardState:
        sds = {}
        for s in d["sds"]:
            aid = bytes.fromhex(s["aid"])
            sds[aid] = SecurityDomain(
                aid, _keys_from(s["keys"]), s["quota"], s["life_cycle"], s["sequence_counter"]
            )
        load_files = {}
        for f in d["load_files"]:
            aid = bytes.fromhex(f["aid"])
            load_files[aid] = LoadFile(aid, bytes.fromhex(f["sd"]), bytes.fromhex(f["data_block"]))
        instances = {}
        for i in d["instances"]:
            aid = bytes.fromhex(i["aid"])
            instances[aid] = Instance(
                aid,
                bytes.fromhex(i["sd"]),
                bytes.fromhex(i["elf"]),
                bytes.fromhex(i["module"]),
                bytes.fromhex(i["description"]),
                i["cost"],
                i["life_cycle"],
                {int(fid, 16): [bytes.fromhex(r) for r in recs] for fid, recs in i["files"].items()},
                i["pin"],
                i["pin_tries_left"],
                bytes.fromhex(i["key"]) if i["key"] else None,
                i["sequence_counter"],
            )
        return cls(
            iin=bytes.fromhex(d["iin"]),
            cin=bytes.fromhex(d["cin"]),
            dap_public_key_pem=d["dap_public_key_pem"],
            sds=sds,
            jpki_files={int(k, 16): bytes.fromhex(v) for k, v in d["jpki_files"].items()},
            jpki_pins={
                int(k, 16): JpkiPin(v["value"], v["limit"], v["left"]) for k, v in d["jpki_pins"].items()
            },
            life_cycle=d["life_cycle"],
            load_files=load_files,
            instances=instances,
            standard_ap_log=list(d.get("standard_ap_log", [])),
        )

    def save(self, path: Path) -> None:
        """Write atomically: a temporary file in the same directory, then rename over the old one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.to_dict(), fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> CardState:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
