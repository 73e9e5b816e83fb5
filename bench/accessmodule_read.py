"""Access module: time to read a card AP of each type, in-process vs through pyscard + pcscd + vpcd.

    .venv/bin/python bench/accessmodule_read.py [--n 50]

Puts types C (64-byte binary), A (records, holder PIN + mutual authentication) and D (600-byte
binary, system-fixed PIN + mutual authentication + secure messaging) on a virtual card with
gpcard, builds the key package entries for them, and times CardAPReader.read() on the card
in-process and in a vpcd reader (the real PC/SC path the `cardap-read` tool uses). Starts pcscd
if it is not running (root). Prints the median per read and the ratios within this run."""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "accessmodule")]

from cardap_access import CardAPReader, pcsc  # noqa: E402
from cardap_access.errors import CardRemovedError  # noqa: E402
from gpcard import gp  # noqa: E402
from gpcard.aid import EXTENDED_AREA_SD_AID  # noqa: E402
from gpcard.apdesc import (  # noqa: E402
    Area,
    FileLayout,
    PinPolicy,
    PinSource,
    UserNumberLocation,
    instance_aid,
    standard_description,
)
from gpcard.diversify import diversify_keys  # noqa: E402
from gpcard.keypackage import APAccess, KeyPackage  # noqa: E402
from gpcard.session import CardSession  # noqa: E402
from tests.pcsc.readers import insert_card, pcscd_service  # noqa: E402
from vcard import CardUnresponsive, VirtualCard  # noqa: E402
from vcard.bureau import DEMO_MASTER_KEYS  # noqa: E402

PIN = "4321"
NUMBER = b"1234567890123456"


class InProcess:
    """The virtual card called directly (no reader), with the module's exception for a lost card."""

    def __init__(self, card: VirtualCard) -> None:
        self.card, self.atr = card, card.ATR

    def transmit(self, apdu: bytes) -> bytes:
        try:
            return self.card.transmit(apdu)
        except CardUnresponsive:
            raise CardRemovedError() from None


def load(card: VirtualCard) -> KeyPackage:
    s = CardSession(card.transmit)
    s.select(EXTENDED_AREA_SD_AID)
    iin, cin = s.card_identity()
    s.open_secure_channel(diversify_keys(DEMO_MASTER_KEYS[bytes(EXTENDED_AREA_SD_AID)], iin, cin))
    holder, system = PinPolicy(PinSource.HOLDER, 4, 8, 3), PinPolicy(PinSource.SYSTEM_FIXED, 8, 8, 3)
    shapes = {
        "C": ([FileLayout.binary(1, 16), FileLayout.binary(2, 64)], UserNumberLocation(1, 0, 0, 16), None),
        "A": (
            [FileLayout.records(1, 1, 16), FileLayout.records(2, 4, 32)],
            UserNumberLocation(1, 1, 0, 16),
            holder,
        ),
        "D": ([FileLayout.binary(1, 16), FileLayout.binary(2, 600)], UserNumberLocation(1, 0, 0, 16), system),
    }
    entries = []
    for serial, (kind, (layout, where, policy)) in enumerate(shapes.items(), 1):
        desc = standard_description(kind, layout, user_number=where, pin_policy=policy)
        aid = instance_aid(Area.EXTENDED, 0x7E000000 + serial)
        key = secrets.token_bytes(16) if policy else None
        pin = "20261201" if policy is system else PIN
        dgis = [gp.dgi_file_content(1, where.record, 0, NUMBER)]
        for f in layout[1:]:
            if f.structure == 1:
                dgis += gp.file_content_dgis(f.fid, 0, bytes(f.length))
            else:
                dgis += [gp.dgi_file_content(f.fid, n, 0, b"R") for n in range(1, f.record_count + 1)]
        if policy:
            dgis += [gp.dgi_ap_key(key or b""), gp.dgi_pin(pin)]
        s.install_standard(desc, aid, dgis)
        entries.append(
            APAccess(
                aid.hex(),
                kind,
                kind,
                desc.encode(),
                1 if key else None,
                key,
                "system" if policy is system else "holder" if policy else "",
                pin if policy is system else None,
            )
        )
    return KeyPackage("bench", "0", "bench", "", tuple(entries))


def per_read(card, package: KeyPackage, n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    reader = CardAPReader(card, package)
    out = {}
    for entry in package.aps:
        reader.read(entry.aid, PIN)  # warm-up
        runs = []
        for _ in range(n):
            t = time.perf_counter()
            assert reader.read(entry.aid, PIN).user_number == NUMBER.decode()
            runs.append(time.perf_counter() - t)
        out[entry.ap_type] = statistics.median(runs)
    return out


def cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    card = VirtualCard.create()
    package = load(card)
    local = per_read(InProcess(card), package, args.n)
    with pcscd_service():
        card2 = VirtualCard.create()
        package2 = load(card2)
        pc = insert_card(card2)
        try:
            with pcsc.connected(pc.reader) as conn:
                real = per_read(conn, package2, args.n)
        finally:
            pc.close()
    print(f"{time.strftime('%Y-%m-%d')} {cpu()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    for kind in ("C", "A", "D"):
        print(
            f"  type {kind}: in-process {local[kind] * 1e3:7.2f} ms/read"
            f"   pcscd+vpcd {real[kind] * 1e3:7.2f} "
            f"ms/read   x{real[kind] / local[kind]:5.1f}   (x{real[kind] / real['C']:4.1f} type C over PC/SC)"
        )


if __name__ == "__main__":
    main()
