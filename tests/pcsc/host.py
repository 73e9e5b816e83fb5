"""Host side of the scenario tests: the project's host library ``gpcard`` (an independent
implementation of docs/card-protocol.md) driving the card through a terminal's ``transmit``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gpcard import gp, plans
from gpcard.apdesc import (  # noqa: F401 - re-exported for tests
    Area,
    CardAPDescription,
    FileLayout,
    PinPolicy,
    PinSource,
    UserNumberLocation,
    instance_aid,
    standard_description,
    standard_elf_aid,
    standard_module_aid,
)
from gpcard.apdu import CommandAPDU
from gpcard.diversify import diversify_keys
from gpcard.scp03 import StaticKeys
from gpcard.session import CardSession
from gpcard.sw import CardError
from vcard.bureau import DEMO_MASTER_KEYS

LOCAL_SD = bytes.fromhex("D392100031000201")
EXTENDED_SD = bytes.fromhex("D392100031000202")
ISD = bytes.fromhex("A000000151000000")
AP_KEY = bytes.fromhex("000102030405060708090A0B0C0D0E0F")
PIN = "4321"

Transmit = Callable[[bytes], bytes]


def open_sd(transmit: Transmit, sd: bytes = LOCAL_SD, *, level: int = 0x33) -> CardSession:
    s = CardSession(transmit)
    s.select(sd)
    iin, cin = s.card_identity()
    s.open_secure_channel(diversify_keys(DEMO_MASTER_KEYS[sd], iin, cin), security_level=level)
    return s


def description(kind: str) -> CardAPDescription:
    pin = PinPolicy(PinSource.HOLDER, 4, 8, 3) if kind != "C" else None
    if kind == "D":
        layout = [FileLayout.binary(0x0001, 40)]
        user = UserNumberLocation(0x0001, 0, 0, 8)
    else:
        layout = [FileLayout.records(0x0001, 3, 20), FileLayout.records(0x0002, 2, 16)]
        user = UserNumberLocation(0x0001, 1, 0, 8)
    return standard_description(kind, layout, user_number=user, pin_policy=pin)


def cost(desc: CardAPDescription) -> int:
    """Memory the doc says an instance costs: 64 + Σ(32 + file size), computed from the layout."""
    total = 64
    for f in desc.files:
        size = f.length if f.structure == 1 else f.record_count * f.record_length
        total += 32 + size
    return total


def install_commands(desc: CardAPDescription, instance: bytes) -> list[CommandAPDU]:
    return [
        gp.install_for_install(
            standard_elf_aid(desc.ap_type),
            standard_module_aid(desc.ap_type),
            instance,
            parameters=gp.install_parameters(desc.encode()),
        )
    ]


def content_dgis(desc: CardAPDescription, user_number: bytes = b"12345678") -> list[bytes]:
    dgis = []
    f = desc.files[0]
    record = 0 if f.structure == 1 else 1
    dgis.append(gp.dgi_file_content(f.fid, record, 0, user_number + b"-hello"))
    if desc.pin_policy is not None:
        dgis += [gp.dgi_ap_key(AP_KEY), gp.dgi_pin(PIN)]
    return dgis


def personalise_commands(instance: bytes, dgis: Sequence[bytes]) -> list[CommandAPDU]:
    """INSTALL [for personalization] + STORE DATA (P1 08/88, DGI format), as gpcard plans it."""
    return plans.personalise_ap(instance, dgis)


def select(transmit: Transmit, aid: bytes) -> int:
    r = transmit(bytes(gp.select(aid).encode()))
    return int.from_bytes(r[-2:], "big")


def raw(transmit: Transmit, hexapdu: str) -> tuple[bytes, int]:
    r = transmit(bytes.fromhex(hexapdu))
    return r[:-2], int.from_bytes(r[-2:], "big")


def ap_session(transmit: Transmit, instance: bytes, *, level: int | None) -> CardSession:
    s = CardSession(transmit)
    s.select(instance)
    if level is not None:
        s.open_secure_channel(StaticKeys.single(AP_KEY, 0x01), security_level=level)
    return s


def read_first(s: CardSession, desc: CardAPDescription, pin: str | None) -> tuple[bytes, int]:
    """VERIFY (if ``pin``), SELECT the first file, READ; returns (data, SW) of the read."""
    if pin is not None:
        s.send(CommandAPDU(0x00, 0x20, 0x00, 0x80, pin.encode()))
    f = desc.files[0]
    s.send(CommandAPDU(0x00, 0xA4, 0x02, 0x0C, f.fid.to_bytes(2, "big")))
    read = (
        CommandAPDU(0x00, 0xB0, 0, 0, le=256) if f.structure == 1 else CommandAPDU(0x00, 0xB2, 1, 4, le=256)
    )
    try:
        r = s.send(read, expect=(0x9000, 0x6982))
    except CardError as e:  # gpcard raises on 6982 inside a channel
        return b"", e.sw
    return r.data, r.sw
