"""``python -m vcard serve|info`` — see README.md, "Virtual My Number Card"."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from vcard.card import CardConfig, VirtualCard
from vcard.state import EXTENDED_SD_AID, LOCAL_SD_AID
from vcard.vpcd import DEFAULT_PORT, VpcdClient

AREAS = {"local": LOCAL_SD_AID, "extended": EXTENDED_SD_AID}

FAULT_HELP = (
    "tear=N (the N-th command loses power), mute=N (silent after N commands), card-locked, "
    "sd-locked=local|extended, pin-blocked, memory-full, wrong-keys; repeatable"
)


def _hex(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex: {value!r}") from None


def _card(args: argparse.Namespace) -> VirtualCard:
    quotas = {}
    for spec in args.quota or []:
        area, _, size = spec.partition("=")
        if area not in AREAS or not size.isdigit():
            raise SystemExit(f"--quota {spec!r}: local=BYTES or extended=BYTES")
        quotas[AREAS[area]] = int(size)
    config = CardConfig(
        cin=args.cin, static_key=args.static_keys, faults=list(args.fault or []), quotas=quotas
    )
    if config.static_key is not None and len(config.static_key) not in (16, 24, 32):
        raise SystemExit("--static-keys: an AES key of 16, 24 or 32 bytes")
    if config.cin is not None and len(config.cin) != 10:
        raise SystemExit("--cin: 10 bytes")
    return VirtualCard.create(config, state_file=args.state)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vcard", description="Virtual My Number Card")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("serve", "info"):
        p = sub.add_parser(name)
        p.add_argument("--state", type=Path, help="JSON state file (created if absent; kept across restarts)")
        p.add_argument("--static-keys", type=_hex, help="give every SD this SCP03 key (e.g. 404142...4F)")
        p.add_argument("--cin", type=_hex, help="card identification number for a new card (10 bytes hex)")
        p.add_argument("--fault", action="append", metavar="FAULT", help=FAULT_HELP)
        p.add_argument(
            "--quota",
            action="append",
            metavar="AREA=BYTES",
            help="area quota of a new card: local=8192, extended=16384",
        )
        if name == "serve":
            p.add_argument("--host", default="127.0.0.1")
            p.add_argument("--port", type=int, default=DEFAULT_PORT, help="vpcd port (35963, 35964, ...)")
            p.add_argument(
                "--no-quickack", action="store_true", help="do not set TCP_QUICKACK (slow; for benchmarks)"
            )
            p.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    try:
        card = _card(args)
    except ValueError as e:
        parser.error(str(e))
    if args.command == "info":
        print(json.dumps(card.info(), ensure_ascii=False, indent=2))
        return 0
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s"
    )
    client = VpcdClient(card, host=args.host, port=args.port, quickack=not args.no_quickack)

    def stop(signum: int, frame: FrameType | None) -> None:
        client.close()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    info = card.info()
    print(f"virtual My Number Card CIN {info['cin']} -> vpcd {args.host}:{args.port}", flush=True)
    client.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
