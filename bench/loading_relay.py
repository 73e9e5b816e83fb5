"""Wall time of a standard load (read the card, then load one type C AP) through the real HTTP
relay, with 0 ms and with 50 ms of added network delay per HTTP round trip, against the same
jobs run in-process through the engine; a delete after each load resets the card (not timed).

    .venv/bin/python bench/loading_relay.py [--n 15] [--delays 0,50]

Relay: a uvicorn server process (config.asgi) on a throw-away SQLite database or DATABASE_URL;
REDIS_URL is required (it carries the wake-up from this process, where the operator's job
starts, to the server process holding the agent's poll). The agent is the real agent logic
(``cardap_agent.agent.Agent``: long poll, scripts, POSTs, its HTTP client) in a thread of this
process, with the virtual card in-process behind its transmit (no pcscd). The delay is added
in the agent's HTTP transport: half before each request is sent, half after its answer arrives
(so an answer to a poll already waiting arrives 25 ms late too), i.e. a network 50 ms round
trip away. In-process: the same services start the same jobs and the engine's
``next_script``/``submit_responses`` are called directly with the card's answers (database
included, no HTTP). Timed: from ``start_read`` until the load job has succeeded."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _relay_world import ROOT, Server, setup_django

sys.path.insert(0, str(ROOT / "agent"))


class DelayTransport(httpx.AsyncBaseTransport):
    """httpx async transport adding ``delay`` seconds per round trip (half each way)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, delay: float) -> None:
        self.inner, self.delay = inner, delay
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.delay:
            await asyncio.sleep(self.delay / 2)
        response = await self.inner.handle_async_request(request)
        if self.delay:
            await asyncio.sleep(self.delay / 2)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def start_agent(
    server_url: str, credential: str, card: Any, delay: float
) -> tuple[Any, threading.Thread, DelayTransport]:
    from cardap_agent import agent as agent_mod
    from cardap_agent.reader import ReaderState

    class InProcessCard:
        """The agent's Card, on the virtual card (reset when the agent closes it, as SCardDisconnect
        with SCARD_RESET_CARD does)."""

        used = False

        def transmit(self, reader: str, apdu: bytes) -> bytes:
            self.used = True
            return bytes(card.transmit(apdu))

        def close(self, *, reset: bool = True) -> None:
            if self.used and reset:
                card.reset()
            self.used = False

    class Present:
        state = ReaderState("Bench Reader", True, "3BE000FF8131FE4514")

        def start(self) -> None: ...

        def stop(self) -> None: ...

    def http_client(config: Any, session: str = "") -> httpx.AsyncClient:
        headers = {"Authorization": f"Terminal {config.credential}", "User-Agent": agent_mod.USER_AGENT}
        if session:
            headers[agent_mod.HEADER_SESSION] = session
        return httpx.AsyncClient(
            base_url=config.server,
            headers=headers,
            timeout=httpx.Timeout(connect=10.0, read=90.0, write=20.0, pool=10.0),
            transport=transport,
        )

    transport = DelayTransport(httpx.AsyncHTTPTransport(), delay)
    agent_mod.http_client = http_client  # the agent's loop opens its client through this name
    agent = agent_mod.Agent(agent_mod.Config(server_url, credential))
    agent.card = InProcessCard()  # type: ignore[assignment]
    agent.watcher = Present()  # type: ignore[assignment]
    thread = threading.Thread(target=lambda: asyncio.run(agent.run()), daemon=True)
    thread.start()
    return agent, thread, transport


def stop_agent(agent: Any, thread: threading.Thread) -> None:
    while agent._loop is None:
        time.sleep(0.01)
    agent._loop.call_soon_threadsafe(agent.stopping.set)
    thread.join(15)


def in_process(terminal: Any, card: Any) -> Any:
    """Serve the terminal's jobs with the engine called directly (what the relay does per POST)."""
    from gpcard.conversation import agent_continues
    from gpcard.script import encode_response_script, parse_command_script
    from loading import engine

    def run(job: Any) -> Any:
        while True:
            job.refresh_from_db()
            if not job.is_active or job.conversation_id is None:
                return job
            conv_id = str(job.conversation_id)
            step = engine.next_script(conv_id)
            while isinstance(step, engine.Script):
                out = []
                for command in parse_command_script(step.body):
                    response = card.transmit(command.encode())
                    out.append(response)
                    if not agent_continues(int.from_bytes(response[-2:], "big")):
                        break
                step = engine.submit_responses(
                    conversation_id=conv_id, terminal_id=terminal.pk, seq=step.seq,
                    body=encode_response_script(out),
                )
            card.reset()

    return run


def wait_done(job: Any) -> Any:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        job.refresh_from_db()
        if not job.is_active:
            return job
        time.sleep(0.002)
    raise RuntimeError(f"job {job.pk} did not end within 60 s (is the agent running?)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=15, help="timed loads per configuration")
    parser.add_argument("--delays", default="0,50", help="added ms per HTTP round trip, comma-separated")
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        sys.exit("REDIS_URL is required: the relay's wake-ups cross processes through Redis")
    os.environ["DEMO_OPEN_ALL_HOURS"] = "1"
    env = setup_django(poll_seconds=25)
    env["DEMO_OPEN_ALL_HOURS"] = "1"
    from django.core.management import call_command
    from django.utils import timezone

    from cardap.models import CardAP
    from loading import services
    from loading.models import CardConversation, Job
    from operators.models import Operator, Terminal
    from operators.services import issue_terminal_credential
    from vcard import VirtualCard

    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as quiet:
        call_command("load_demo", credential_file=str(Path(tmp) / "credential"), stdout=quiet)
    op = Operator.objects.get(username="city_op")
    terminal = Terminal.objects.get(name="窓口端末1")
    ap = CardAP.objects.get(name="デモ市 図書館カード")  # type C, extended-use area
    admin = Operator.objects.get(username="city_admin")
    credential = issue_terminal_credential(actor=admin, terminal=terminal)
    card = VirtualCard.create()

    def one_load(terminal: Terminal, card: VirtualCard, run: Any) -> tuple[float, int]:
        """(seconds for read + load, their round trips), then a delete (untimed)."""
        since = timezone.now()
        t = time.perf_counter()
        read = run(services.start_read(operator=op, terminal=terminal, request_key=uuid.uuid4().hex))
        assert read.state == Job.State.SUCCEEDED, read.error_message
        load = run(
            services.start_load(
                operator=op, terminal=terminal, read_job=read, items=[services.LoadItem(ap)],
                consent=True, request_key=uuid.uuid4().hex,
            )
        )
        elapsed = time.perf_counter() - t
        assert load.state == Job.State.SUCCEEDED, load.error_message
        assert ap.aid in card.info()["instances"]
        convs = CardConversation.objects.filter(terminal=terminal, created_at__gte=since)
        trips = sum(c.round_trips for c in convs)
        reread = run(services.start_read(operator=op, terminal=terminal, request_key=uuid.uuid4().hex))
        deleted = run(
            services.start_delete(
                operator=op, terminal=terminal, read_job=reread, card_aps=[ap], consent=True,
                request_key=uuid.uuid4().hex,
            )
        )
        assert deleted.state == Job.State.SUCCEEDED and ap.aid not in card.info()["instances"]
        return elapsed, trips

    # The configurations take turns, load after load, so the shared machine's load hits each alike.
    delays = [int(d) for d in args.delays.split(",")]
    names = [f"relay, +{d} ms per round trip" for d in delays] + ["in-process engine"]
    results: dict[str, list[float]] = {name: [] for name in names}
    trips: dict[str, set[int]] = {name: set() for name in names}
    http_requests: set[int] = set()  # sent by the agent per read + load + read + delete
    # The in-process runs use a terminal (and card) of their own, so the agent's poll never sees them.
    other = Terminal.objects.get(name="窓口端末2")
    other_card = VirtualCard.create()
    local = in_process(other, other_card)
    server = Server(env)
    agent, thread, transport = start_agent(server.url, credential, card, 0.0)
    try:
        time.sleep(1)  # the agent's first poll is waiting
        for i in range(args.n + 2):  # 2 warm-up rounds
            for delay_ms, name in zip(delays, names, strict=False):
                transport.delay = delay_ms / 1000
                time.sleep(0.2)  # the waiting poll was sent under the previous delay
                sent = transport.requests
                elapsed, n_trips = one_load(terminal, card, wait_done)
                if i >= 2:
                    results[name].append(elapsed)
                    trips[name].add(n_trips)
                    http_requests.add(transport.requests - sent)
            elapsed, n_trips = one_load(other, other_card, local)
            if i >= 2:
                results[names[-1]].append(elapsed)
                trips[names[-1]].add(n_trips)
    finally:
        stop_agent(agent, thread)
        server.stop()

    if os.environ.get("BENCH_VERBOSE"):
        for name, times in results.items():
            print(name, [round(t * 1e3) for t in times])
    base = statistics.median(results["in-process engine"])
    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()} Python {platform.python_version()}")
    db = env["DATABASE_URL"].split(":")[0]
    print(f"database {db}, redis on, n={args.n}; read + load of one type C AP:")
    for name, times in results.items():
        med = statistics.median(times)
        print(
            f"  {name:34} median {med * 1e3:7.1f} ms"
            f"  p90 {statistics.quantiles(times, n=10)[-1] * 1e3:7.1f} ms"
            f"  x{med / base:5.1f}  card round trips {sorted(trips[name])}"
        )
    print(f"  agent HTTP requests per read + load + (untimed) read + delete: {sorted(http_requests)}")


if __name__ == "__main__":
    main()
