"""SCP03 wrap + unwrap cost per command (host side, gpcard.scp03).

Run from the repository root:  .venv/bin/python bench/scp03_wrap.py [--n 64] [--repeat 20]

For AES-128 and AES-256 and security levels 01 (C-MAC) and 33 (C-MAC, C-DEC, R-MAC, R-ENC) it
times (a) one command at a time (wrap, then unwrap its response) and (b) a batch of N commands
wrapped in one go then N responses unwrapped, plus the handshake. Responses are produced once
by the independent card end used in the tests (tests/gpcard/card_double.py), outside the timing.
Prints microseconds per command and ratios within this run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import cryptography  # noqa: E402

from gpcard.apdu import CommandAPDU, ResponseAPDU  # noqa: E402
from gpcard.scp03 import SCP03Session, StaticKeys  # noqa: E402
from tests.gpcard.card_double import CardSCP03  # noqa: E402

HOST_CHALLENGE = bytes(range(8))


def commands(n: int) -> list[CommandAPDU]:
    # STORE DATA-sized commands: 200 bytes of data, a short answer expected
    return [CommandAPDU(0x80, 0xE2, 0x00, i % 256, bytes([i % 256]) * 200, le=256) for i in range(n)]


def prepare(key: bytes, level: int, cmds: list[CommandAPDU]) -> tuple[bytes, bytes, list[bytes]]:
    """The card's INITIALIZE UPDATE answer, EA answer and the R-APDUs for the run (deterministic)."""
    card = CardSCP03(key, key)
    host = SCP03Session(StaticKeys.single(key), security_level=level, host_challenge=HOST_CHALLENGE)
    iu = card.initialize_update(host.initialize_update().encode())
    ea = card.external_authenticate(host.authenticate(ResponseAPDU.parse(iu)).encode())
    rapdus = [card.command(w.encode(), b"\x00" * 16)[1] for w in host.wrap_all(cmds)]
    return iu, ea, rapdus


def opened(key: bytes, level: int, iu: bytes, ea: bytes) -> SCP03Session:
    s = SCP03Session(StaticKeys.single(key), security_level=level, host_challenge=HOST_CHALLENGE)
    s.initialize_update()
    s.authenticate(ResponseAPDU.parse(iu))
    s.unwrap(ea)
    return s


def best(fn: Callable[[], None], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(key: bytes, level: int, cmds: list[CommandAPDU], repeat: int) -> tuple[float, float, float]:
    """(handshake seconds, one-by-one seconds per command, batch seconds per command)."""
    iu, ea, rapdus = prepare(key, level, cmds)
    n = len(cmds)

    def handshake() -> None:
        opened(key, level, iu, ea)

    def one_by_one() -> None:
        s = opened(key, level, iu, ea)
        for c, r in zip(cmds, rapdus, strict=True):
            s.wrap(c)
            s.unwrap(r)

    def batch() -> None:
        s = opened(key, level, iu, ea)
        s.wrap_all(cmds)
        s.unwrap_all(rapdus)

    hs = best(handshake, repeat)
    return hs, (best(one_by_one, repeat) - hs) / n, (best(batch, repeat) - hs) / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=64, help="commands per batch")
    ap.add_argument("--repeat", type=int, default=20, help="runs per figure (best is kept)")
    args = ap.parse_args()
    n, repeat = args.n, args.repeat
    cmds = commands(n)
    print(
        f"python {platform.python_version()}, cryptography {cryptography.__version__}, "
        f"{platform.machine()}, N = {n} commands of 200 data bytes, best of {repeat}"
    )
    print(f"{'key':>7} {'level':>5} {'handshake µs':>13} {'one-by-one µs/cmd':>18} {'batch µs/cmd':>13}")
    results = {}
    for size in (16, 32):
        key = bytes(range(size))
        for level in (0x01, 0x33):
            hs, obo, bat = measure(key, level, cmds, repeat)
            results[(size, level)] = bat
            print(f"AES-{size * 8:<3} {level:>5X} {hs * 1e6:>13.0f} {obo * 1e6:>18.1f} {bat * 1e6:>13.1f}")
    base = results[(16, 0x01)]
    print("ratios (batch cost per command, relative to AES-128 level 01):")
    for (size, level), v in results.items():
        print(f"  AES-{size * 8} level {level:02X}: {v / base:.2f}")


if __name__ == "__main__":
    main()
