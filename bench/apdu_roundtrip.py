"""APDU round trip: in-process vs through pyscard + pcscd + vpcd, with and without TCP_QUICKACK.

    .venv/bin/python bench/apdu_roundtrip.py [--n 2000]

Starts pcscd if it is not running (root), puts a virtual card into a free vpcd slot, and times
GET DATA (CIN) on a selected SD. Prints per-APDU times and the ratios within this run."""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pcsc.readers import insert_card, pcscd_service  # noqa: E402
from vcard import VirtualCard  # noqa: E402

SELECT_SD = bytes.fromhex("00A4040008D392100031000201")
GET_CIN = bytes.fromhex("80CA004500")


def per_apdu(transmit, n: int) -> float:  # type: ignore[no-untyped-def]
    assert transmit(SELECT_SD)[-2:] == b"\x90\x00"
    for _ in range(min(20, n)):  # warm-up
        transmit(GET_CIN)
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(n):
            transmit(GET_CIN)
        runs.append((time.perf_counter() - t) / n)
    return statistics.median(runs)


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
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    card = VirtualCard.create()
    results = {"in-process": per_apdu(card.transmit, args.n * 5)}
    with pcscd_service():
        for label, quickack, n in (
            ("pcscd+vpcd, TCP_QUICKACK", True, args.n),
            ("pcscd+vpcd, no QUICKACK", False, 25),
        ):
            pc = insert_card(VirtualCard.create(), quickack=quickack)
            try:
                results[label] = per_apdu(pc.transmit, n)
            finally:
                pc.close()
    base = results["in-process"]
    quick = results["pcscd+vpcd, TCP_QUICKACK"]
    print(f"{time.strftime('%Y-%m-%d')} {cpu()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    for label, seconds in results.items():
        print(
            f"  {label:28s} {seconds * 1e3:9.3f} ms/APDU   x{seconds / base:8.1f} in-process"
            f"   x{seconds / quick:6.2f} QUICKACK"
        )


if __name__ == "__main__":
    main()
