"""How many idle agents one web process holds: N agents each keep a long poll open (and poll
again when it ends, as the real agent does) against ONE uvicorn process; the server process's CPU
and memory are measured once all N wait.

    .venv/bin/python bench/relay_idle_agents.py [--agents 2000] [--poll-seconds 25] [--measure 60]

Target (DESIGN.md): 2,000 waiting agents in one process at < 5 % of a core and < 300 MB.
Throw-away SQLite database unless DATABASE_URL is set; REDIS_URL is used when set."""

from __future__ import annotations

import argparse
import asyncio
import platform
import resource
import secrets
import time

from _relay_world import Server, setup_django


def make_credentials(n: int) -> list[str]:
    """n terminals with credentials, written in bulk (the issuing service audits one by one)."""
    from cardap.models import Provider
    from operators.models import Operator, Terminal
    from operators.services import TOKEN_PREFIX
    from operators.tokens import digest as _digest

    provider = Provider.objects.create(
        name="ベンチ市", kind=Provider.Kind.MUNICIPALITY, local_gov_code="131016", status=Provider.Status.LIVE
    )
    admin = Operator.objects.create(
        username="bench_admin", role=Operator.Role.PROVIDER_ADMIN, provider=provider
    )
    tokens = [f"{TOKEN_PREFIX}{i:08x}_{secrets.token_urlsafe(32)}" for i in range(n)]
    Terminal.objects.bulk_create(
        Terminal(
            provider=provider,
            name=f"端末{i:05d}",
            location="ベンチ",
            administrator=admin,
            credential_prefix=f"{i:08x}",
            credential_hash=_digest(t),
        )
        for i, t in enumerate(tokens)
    )
    return tokens


async def agents(
    url: str, tokens: list[str], ramp: float, stop: asyncio.Event, waiting: list[int], errors: list[str]
) -> None:
    import httpx

    limits = httpx.Limits(max_connections=len(tokens) + 10, max_keepalive_connections=len(tokens) + 10)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(120, connect=60)) as http:

        async def one(i: int, token: str) -> None:
            await asyncio.sleep(ramp * i / len(tokens))
            session = secrets.token_hex(16)
            body = {"session": session, "agent": "bench/1", "reader": "Bench Reader", "card_present": False}
            while not stop.is_set():
                waiting[0] += 1
                try:
                    r = await http.post(
                        "/relay/v1/poll", json=body, headers={"Authorization": f"Terminal {token}"}
                    )
                    if r.status_code != 204:
                        errors.append(f"HTTP {r.status_code}")
                except Exception as exc:  # noqa: BLE001
                    errors.append(type(exc).__name__)
                    await asyncio.sleep(1)
                finally:
                    waiting[0] -= 1

        tasks = [asyncio.create_task(one(i, t)) for i, t in enumerate(tokens)]
        await stop.wait()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--agents", type=int, default=2000)
    parser.add_argument("--poll-seconds", type=int, default=25)
    parser.add_argument("--ramp", type=float, default=30.0)
    parser.add_argument("--measure", type=float, default=60.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.agents + 100)), hard))
    env = setup_django(poll_seconds=args.poll_seconds)
    tokens = make_credentials(args.agents)
    server = Server(env)
    base_rss = server.rss_mb()
    stop = asyncio.Event()
    waiting = [0]
    errors: list[str] = []

    async def run() -> dict[str, float]:
        client = asyncio.create_task(agents(server.url, tokens, args.ramp, stop, waiting, errors))
        await asyncio.sleep(args.ramp + 5)
        cpu0, t0 = server.cpu_seconds(), time.monotonic()
        low = args.agents
        end = t0 + args.measure
        while time.monotonic() < end:
            await asyncio.sleep(0.5)
            low = min(low, waiting[0])
        cpu = (server.cpu_seconds() - cpu0) / (time.monotonic() - t0)
        result = {"cpu": cpu, "rss": server.rss_mb(), "low": low}
        stop.set()
        await client
        return result

    try:
        r = asyncio.run(run())
    finally:
        server.stop()
    print(
        f"{time.strftime('%Y-%m-%d')} {platform.machine()} Python {platform.python_version()}, "
        f"database {env['DATABASE_URL'].split(':')[0]}, redis {'yes' if env.get('REDIS_URL') else 'no'}"
    )
    print(
        f"agents {args.agents}, poll {args.poll_seconds} s, measured {args.measure:.0f} s after a "
        f"{args.ramp:.0f} s ramp"
    )
    print(f"  polls open (lowest while measuring) {r['low']}")
    print(f"  server CPU   {r['cpu'] * 100:6.1f} % of one core")
    print(f"  server RSS   {r['rss']:6.0f} MB (idle before the agents: {base_rss:.0f} MB)")
    print(f"  errors       {len(errors)} {sorted(set(errors))[:5]}")


if __name__ == "__main__":
    main()
