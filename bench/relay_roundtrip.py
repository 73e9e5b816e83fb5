"""Round trip of the identify script (3 commands, one script) through the real relay vs calling
the card in-process.

    .venv/bin/python bench/relay_roundtrip.py [--n 200]

Relay: a uvicorn server process on a throw-away SQLite database (or DATABASE_URL / REDIS_URL);
per conversation the timed part is: the poll hands out the script, the client runs it on the
virtual card (in-process) and POSTs the responses, the server replays the program, finishes the
conversation and answers 204. In-process: ``run_in_process(identify)`` against the same card.
Queuing the conversation (a database write by the caller) is not timed."""

from __future__ import annotations

import argparse
import platform
import secrets
import statistics
import time

from _relay_world import Server, make_terminals, setup_django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    env = setup_django(poll_seconds=25)
    import httpx

    from gpcard.conversation import Batch, run_batch, run_in_process
    from gpcard.script import CONTENT_TYPE_RESPONSE_SCRIPT, encode_response_script, parse_command_script
    from loading import engine
    from vcard import VirtualCard

    ((terminal_id, credential),) = make_terminals(1)
    card = VirtualCard.create()
    server = Server(env)
    sess = secrets.token_hex(16)
    auth = {"Authorization": f"Terminal {credential}", "X-Cardap-Agent-Session": sess}
    relay_times: list[float] = []
    poll_times: list[float] = []
    try:
        with httpx.Client(base_url=server.url, headers=auth, timeout=30) as http:
            for i in range(args.n + 10):
                engine.start_conversation(terminal_id=terminal_id, program_name="identify", params={})
                t = time.perf_counter()
                got = http.post("/relay/v1/poll", json={"session": sess, "card_present": True})
                assert got.status_code == 200, got.text
                t_poll = time.perf_counter() - t
                commands = tuple(c.encode() for c in parse_command_script(got.content))
                answer = encode_response_script(run_batch(Batch(commands), card.transmit))
                done = http.post(
                    got.headers["X-Admin-Next-URI"],
                    content=answer,
                    headers={"Content-Type": CONTENT_TYPE_RESPONSE_SCRIPT},
                )
                assert done.status_code == 204 and done.headers["X-Cardap-Conversation-State"] == "finished"
                if i >= 10:  # warm-up
                    relay_times.append(time.perf_counter() - t)
                    poll_times.append(t_poll)
    finally:
        server.stop()
    program = engine.get_program("identify")
    local = []
    for _ in range(args.n):
        t = time.perf_counter()
        run_in_process(program(engine.Context("bench", 0, {}, b"s" * 32)), card.transmit)
        local.append(time.perf_counter() - t)
    relay_ms, local_ms = statistics.median(relay_times) * 1e3, statistics.median(local) * 1e3
    print(f"{time.strftime('%Y-%m-%d')} {platform.machine()} Python {platform.python_version()}")
    print(f"database {env['DATABASE_URL'].split(':')[0]}, n={args.n}, medians:")
    print(f"  in-process identify      {local_ms:8.3f} ms")
    print(
        f"  through the relay        {relay_ms:8.3f} ms  (poll + POST, p90 "
        f"{statistics.quantiles(relay_times, n=10)[-1] * 1e3:.1f} ms)"
    )
    print(f"  of which the poll        {statistics.median(poll_times) * 1e3:8.3f} ms")
    print(f"  ratio relay / in-process {relay_ms / local_ms:8.0f}")


if __name__ == "__main__":
    main()
