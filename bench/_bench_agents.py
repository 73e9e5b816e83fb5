"""N terminal agents in one process for bench/loading_scale.py: each is the real cardap-agent
(``cardap_agent.agent.Agent``: its long poll, script runner, POST and retry logic, unchanged)
with an in-process virtual card behind its ``transmit`` in place of a PC/SC reader.

Reads ``{"server": url, "terminals": [[terminal id, credential], ...]}`` as JSON on stdin,
prints ``ready`` once every agent runs, stops on SIGTERM and then prints, as one JSON line,
each terminal's card (CIN and instances) and the agents' exit codes. No Django here."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "agent"))

from cardap_agent.agent import Agent, Config  # noqa: E402
from cardap_agent.reader import ReaderState  # noqa: E402

from vcard import VirtualCard  # noqa: E402

READER = "Bench Virtual Reader 00 00"


class VirtualReader:
    """What the agent's ``Card`` does with a PC/SC reader, done with a virtual card."""

    def __init__(self, card: VirtualCard) -> None:
        self.vcard = card
        self.connected = False

    def transmit(self, reader: str, apdu: bytes) -> bytes:
        if not self.connected:
            self.vcard.power_on()
            self.connected = True
        return self.vcard.transmit(apdu)

    def close(self, *, reset: bool = True) -> None:
        if self.connected and reset:
            self.vcard.reset()
        self.connected = False


class FixedWatcher:
    """A reader with a card always present."""

    def __init__(self, atr: str) -> None:
        self.state = ReaderState(READER, True, atr)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


class BenchAgent(Agent):
    def __init__(self, config: Config, card: VirtualCard) -> None:
        super().__init__(config)
        self.card = VirtualReader(card)  # type: ignore[assignment]
        self.watcher = FixedWatcher(card.power_on().hex().upper())  # type: ignore[assignment]


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="agent %(levelname)s %(message)s")
    spec = json.loads(sys.stdin.read())
    credentials = Path(tempfile.mkdtemp(prefix="cardap-bench-agents-"))
    agents: dict[int, BenchAgent] = {}
    for terminal_id, credential in spec["terminals"]:
        path = credentials / f"{terminal_id}.cred"
        path.write_text(credential)
        path.chmod(0o600)
        config = Config(spec["server"].rstrip("/"), credential)
        agents[terminal_id] = BenchAgent(config, VirtualCard.create())
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.create_task(a.run()) for a in agents.values()]
    print("ready", flush=True)
    await stop.wait()
    for a in agents.values():
        a.stopping.set()
    codes = await asyncio.gather(*tasks, return_exceptions=True)
    cards = {
        tid: {"cin": a.card.vcard.info()["cin"], "instances": a.card.vcard.info()["instances"]}  # type: ignore[attr-defined]
        for tid, a in agents.items()
    }
    print(json.dumps({"cards": cards, "codes": [repr(c) for c in codes]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
