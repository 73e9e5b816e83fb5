"""``cardap-agent run | readers | check`` (see agent/README.md). Every option can also come from
an environment variable: CARDAP_AGENT_SERVER, CARDAP_AGENT_CREDENTIAL_FILE, CARDAP_AGENT_READER,
CARDAP_AGENT_CA_FILE."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys

from cardap_agent import __version__
from cardap_agent.agent import EXIT_CONFIG, Agent, ConfigError, check, load_config
from cardap_agent.reader import list_readers, reader_state


def _env(name: str) -> str | None:
    return os.environ.get(f"CARDAP_AGENT_{name}") or None


def _connection_args(p: argparse.ArgumentParser, *, reader: bool) -> None:
    p.add_argument(
        "--server", default=_env("SERVER"), help="the service's URL, https://… (CARDAP_AGENT_SERVER)"
    )
    p.add_argument(
        "--credential-file",
        default=_env("CREDENTIAL_FILE"),
        help="file holding the terminal credential (CARDAP_AGENT_CREDENTIAL_FILE)",
    )
    p.add_argument("--ca-file", default=_env("CA_FILE"), help="CA certificate(s) of a closed network (PEM)")
    if reader:
        p.add_argument(
            "--reader", default=_env("READER"), help="reader name or its beginning (default: the first)"
        )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.server or "", args.credential_file or "", args.reader, args.ca_file)
    agent = Agent(config)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl-C raises instead
                loop.add_signal_handler(sig, agent.stopping.set)
        return await agent.run()

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


def _readers(_args: argparse.Namespace) -> int:
    readers = list_readers()
    if not readers:
        print("no PC/SC card reader found (is the PC/SC service running and the reader plugged in?)")
        return 1
    for name in readers:
        print(reader_state(name).describe())
    return 0


def _check(args: argparse.Namespace) -> int:
    config = load_config(args.server or "", args.credential_file or "", None, args.ca_file)
    ok, line = asyncio.run(check(config))
    print(line)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cardap-agent", description="Terminal agent of the card AP loading service"
    )
    parser.add_argument("--version", action="version", version=f"cardap-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="relay the server's scripts to the card until stopped")
    _connection_args(run, reader=True)
    readers = sub.add_parser("readers", help="list card readers, card present and ATR")
    readers.add_argument("-v", "--verbose", action="store_true")
    chk = sub.add_parser("check", help="is the server reachable and the credential accepted?")
    _connection_args(chk, reader=False)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # request lines are ours to log
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    try:
        return {"run": _run, "readers": _readers, "check": _check}[args.command](args)
    except ConfigError as exc:
        print(f"cardap-agent: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    raise SystemExit(main())
