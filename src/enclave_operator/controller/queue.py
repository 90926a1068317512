"""A keyed work queue: each key is processed by one worker at a time, and a key added while
it is being processed is processed once more afterwards (controller-runtime's workqueue)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """``add(key, urgent=True)`` puts a key ahead of the others: a resource half-way through
    its steps (finalizer added, release installed) goes on before one not yet started, so that
    with many at once each reaches its end early instead of all of them at the very end."""

    def __init__(self) -> None:
        self._ready: asyncio.PriorityQueue[tuple[int, int, K]] = asyncio.PriorityQueue()
        self._queued: dict[K, int] = {}  # key → its best priority queued (0 urgent, 1 not)
        self._active: set[K] = set()
        self._dirty: dict[K, int] = {}
        self._timers: dict[K, asyncio.TimerHandle] = {}
        self._order = itertools.count()  # first in, first out within a priority

    def add(self, key: K, urgent: bool = False) -> None:
        priority = 0 if urgent else 1
        if key in self._active:
            self._dirty[key] = min(priority, self._dirty.get(key, 1))
        elif self._queued.get(key, 2) > priority:
            # an urgent add of a key already waiting moves it up; the older entry goes stale
            self._queued[key] = priority
            self._ready.put_nowait((priority, next(self._order), key))

    def add_after(self, key: K, delay: float) -> None:
        """Add later; an earlier pending timer for the key wins."""
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        timer = self._timers.get(key)
        if timer is not None and float(timer.when()) <= due:
            return
        if timer is not None:
            timer.cancel()
        self._timers[key] = loop.call_at(due, self._fire, key)

    def _fire(self, key: K) -> None:
        self._timers.pop(key, None)
        self.add(key)

    async def get(self) -> K:
        while True:
            priority, _, key = await self._ready.get()
            if self._queued.get(key) == priority:  # else a stale entry of a key moved up
                break
        del self._queued[key]
        self._active.add(key)
        return key

    def done(self, key: K) -> None:
        self._active.discard(key)
        if key in self._dirty:
            self.add(key, urgent=self._dirty.pop(key) == 0)

    def forget(self, key: K) -> None:
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def __len__(self) -> int:
        return len(self._queued)


class Backoff:
    """Exponential delays per key for repeated failures; success resets."""

    def __init__(self, base: float = 2.0, cap: float = 300.0) -> None:
        self.base, self.cap = base, cap
        self._failures: dict[Hashable, int] = {}
        self._not_before: dict[Hashable, float] = {}

    def failed(self, key: Hashable) -> float:
        n = self._failures.get(key, 0) + 1
        self._failures[key] = n
        delay: float = min(self.cap, self.base * 2.0 ** (n - 1))
        self._not_before[key] = time.monotonic() + delay
        return delay

    def succeeded(self, key: Hashable) -> None:
        self._failures.pop(key, None)
        self._not_before.pop(key, None)

    def remaining(self, key: Hashable) -> float:
        return max(0.0, self._not_before.get(key, 0.0) - time.monotonic())
