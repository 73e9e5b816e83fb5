"""Benchmark: wall time of one standard card AP load (type C, extended area) as a card job —
the job's read (identity, resources, session counters) and its change script — against the same
card operation run in-process, with 0 and 50 ms added per agent round trip.

    .venv/bin/python bench/loading_load.py [--runs 10]

"in-process": gpcard.operations.read_card + change_card against the virtual card directly (no
database). "engine": loading.services.start_load, the engine's next_script/submit_responses and
the job handlers on a throw-away SQLite database, an in-process stand-in for the agent sleeping
the added delay before each POST. Not yet through the HTTP relay and cardap-agent (the relay is
built separately; add that path here once it is merged).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
tmp = tempfile.mkdtemp(prefix="bench-loading-")
os.environ.setdefault("CARDAP_DEMO", "1")
os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"
os.environ["SERVICE_OPEN_TIME"], os.environ["SERVICE_CLOSE_TIME"] = "00:00", "23:59"
os.environ["SERVICE_CLOSED_PERIOD"] = "02-28..02-28"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402

call_command("migrate", verbosity=0)

from cardap.models import Provider  # noqa: E402
from gpcard import operations  # noqa: E402
from gpcard.conversation import run_in_process  # noqa: E402
from loading import cardkeys, services  # noqa: E402
from loading.programs.card import build_actions  # noqa: E402
from operators.models import Operator  # noqa: E402
from tests.conftest import make_operator  # noqa: E402
from tests.loading.jobs_support import Agent, setup  # noqa: E402
from vcard import VirtualCard  # noqa: E402


class SlowAgent(Agent):
    def __init__(self, terminal, card, delay: float) -> None:  # type: ignore[no-untyped-def]
        super().__init__(terminal, card)
        self.delay = delay

    def run_script(self, body: bytes) -> bytes:
        if self.delay:
            time.sleep(self.delay)
        return super().run_script(body)


def world():  # type: ignore[no-untyped-def]
    from dataclasses import make_dataclass

    city = Provider.objects.create(
        name="ベンチ市", kind="municipality", local_gov_code="131016", status="live"
    )
    R = Operator.Role
    W = make_dataclass("W", ["city", "city_admin", "city_operator", "jlis"])
    return W(
        city,
        make_operator("b_admin", R.PROVIDER_ADMIN, city),
        make_operator("b_op", R.OPERATOR, city),
        make_operator("b_jlis", R.JLIS_STAFF, None),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    w = world()
    s = setup(w)
    n = iter(range(10**6))
    results: dict[str, list[float]] = {"in-process": [], "engine +0 ms": [], "engine +50 ms": []}
    for _ in range(args.runs):
        card = VirtualCard.create()
        from loading.engine import Context

        ctx = Context("bench", s.terminal.pk, {}, b"s" * 32)
        t0 = time.perf_counter()
        content, _trips = run_in_process(
            operations.read_card(keys=cardkeys.card_keys, challenge=ctx.host_challenge, listing=False),
            card.transmit,
        )
        ctx.params = {
            "actions": [{"ref": "1", "op": "install", "card_ap": s.c.pk, "user_number": "1234567890123456"}]
        }
        run_in_process(
            operations.change_card(
                content=content,
                actions=build_actions(ctx),
                keys=cardkeys.card_keys,
                challenge=ctx.host_challenge,
            ),
            card.transmit,
        )
        results["in-process"].append(time.perf_counter() - t0)
        for delay, label in ((0.0, "engine +0 ms"), (0.05, "engine +50 ms")):
            card = VirtualCard.create()
            agent = SlowAgent(s.terminal, card, delay)
            agent.delay = 0.0
            read = agent.run(
                services.start_read(operator=w.city_operator, terminal=s.terminal, request_key=f"b{next(n)}")
            )
            agent.delay = delay
            t0 = time.perf_counter()
            job = services.start_load(
                operator=w.city_operator,
                terminal=s.terminal,
                read_job=read,
                items=[services.LoadItem(s.c)],
                consent=True,
                request_key=f"b{next(n)}",
            )
            job = agent.run(job)
            results[label].append(time.perf_counter() - t0)
            assert job.state == "succeeded", job.error_code
    base = statistics.median(results["in-process"])
    print(f"runs: {args.runs}; round trips per load: 2")
    print("| path | median ms | vs in-process |")
    print("|---|---|---|")
    for label, values in results.items():
        med = statistics.median(values)
        print(f"| {label} | {med * 1000:.1f} | {med / base:.1f} |")


if __name__ == "__main__":
    main()
