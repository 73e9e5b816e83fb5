"""Waking the agent that waits for work on a terminal (the relay's long poll).

``notify(terminal_id)`` is called when something the terminal's waiting poll must react to has
committed: a conversation queued for it, its credential revoked or rotated, another agent taking
over. ``listen(terminal_id)`` is what the poll awaits.

With ``REDIS_URL`` set, a notification is published on Redis (channel
``cardap:relay:terminal:<id>``) so that whichever web process holds the poll wakes; every process
keeps ONE pattern subscription and dispatches to its own waiters, so thousands of idle polls cost
no Redis connection each. On the embedded default (no Redis) the same works inside one process.

A listener is registered *before* the poll looks at the database, so a notification sent between
that look and the wait is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

CHANNEL_PREFIX = "cardap:relay:terminal:"
_RECONNECT_SECONDS = 2.0


class Listener:
    """One waiting poll's doorbell."""

    def __init__(self, hub: _Hub, terminal_id: int) -> None:
        self._hub = hub
        self.terminal_id = terminal_id
        self.event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """Wait until notified or ``timeout`` seconds pass; True when notified (or when the waiter
        should look at the database anyway: Redis is down and notifications may be lost). The
        doorbell is reset, so the next wait waits for the next notification."""
        degraded = not self._hub.connected
        if degraded:
            # Redis is down: wake up now and then to look at the database ourselves.
            timeout = min(timeout, _RECONNECT_SECONDS * 2)
            await self._hub.ensure_listening()
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return degraded
        self.event.clear()
        return True


class _Hub:
    """The waiters of one event loop, by terminal."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.waiters: dict[int, set[Listener]] = {}
        self.redis_url = settings.REDIS_URL
        self.connected = not self.redis_url
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None

    def add(self, listener: Listener) -> None:
        self.waiters.setdefault(listener.terminal_id, set()).add(listener)

    def discard(self, listener: Listener) -> None:
        group = self.waiters.get(listener.terminal_id)
        if group is not None:
            group.discard(listener)
            if not group:
                del self.waiters[listener.terminal_id]

    def wake(self, terminal_id: int) -> None:
        for listener in self.waiters.get(terminal_id, ()):
            listener.event.set()

    def wake_all(self) -> None:
        for group in self.waiters.values():
            for listener in group:
                listener.event.set()

    async def ensure_listening(self) -> None:
        if not self.redis_url or self.connected:
            return
        if self._task is None or self._task.done():
            self._ready = asyncio.Event()
            self._task = self.loop.create_task(self._listen())
        assert self._ready is not None
        # Bounded: when Redis is down the caller goes on with a short wait instead.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), _RECONNECT_SECONDS)

    async def _listen(self) -> None:
        import redis.asyncio as aioredis

        client: Any = aioredis.Redis.from_url(self.redis_url, health_check_interval=30)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
            self.connected = True
            assert self._ready is not None
            self._ready.set()
            async for message in pubsub.listen():
                if message.get("type") != "pmessage":
                    continue
                channel = message["channel"].decode()
                with contextlib.suppress(ValueError):
                    self.wake(int(channel[len(CHANNEL_PREFIX) :]))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis went away: waiters look at the database themselves
            log.warning("relay wake-ups: lost the Redis subscription (%s); reconnecting", exc)
        finally:
            self.connected = False
            self.wake_all()
            with contextlib.suppress(Exception):
                await pubsub.aclose()
                await client.aclose()


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Hub] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def _hub() -> _Hub:
    loop = asyncio.get_running_loop()
    with _hubs_lock:
        hub = _hubs.get(loop)
        if hub is None or hub.redis_url != settings.REDIS_URL:
            hub = _hubs[loop] = _Hub(loop)
        return hub


@contextlib.asynccontextmanager
async def listen(terminal_id: int) -> AsyncIterator[Listener]:
    """Register a doorbell for ``terminal_id`` (subscribed before this returns)."""
    hub = _hub()
    listener = Listener(hub, terminal_id)
    hub.add(listener)
    try:
        await hub.ensure_listening()
        yield listener
    finally:
        hub.discard(listener)


_publisher: Any = None
_publisher_url = ""


def notify(terminal_id: int) -> None:
    """Wake the terminal's waiting poll, wherever it is. Safe from any thread."""
    global _publisher, _publisher_url
    url = settings.REDIS_URL
    if url:
        import redis

        if _publisher is None or _publisher_url != url:
            _publisher, _publisher_url = redis.Redis.from_url(url), url
        try:
            _publisher.publish(f"{CHANNEL_PREFIX}{terminal_id}", b"1")
            return
        except Exception as exc:  # the poll finds the work itself at its next look
            log.warning("relay wake-ups: could not publish to Redis (%s)", exc)
    with _hubs_lock:
        hubs = list(_hubs.values())
    for hub in hubs:
        if hub.loop.is_closed():
            continue
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is hub.loop:
            hub.wake(terminal_id)
        else:
            with contextlib.suppress(RuntimeError):
                hub.loop.call_soon_threadsafe(hub.wake, terminal_id)
