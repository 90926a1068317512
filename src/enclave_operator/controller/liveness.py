"""What the operator's liveness and readiness probes ask.

Answered on the metrics server's thread, not on the event loop, so that a blocked loop is
reported as such (with how long it has been blocked) instead of only timing a probe out, and a
worker task that died is named instead of leaving a process that answers but does nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

BLOCKED_AFTER = 5.0
"""Seconds without a heartbeat after which the event loop counts as blocked."""
BEAT = 1.0
SYNC_WITHIN = 120.0
"""Seconds a first listing may take before the process counts as stuck (controller-runtime's
default cache-sync timeout): a listing that keeps failing (RBAC, an API server that refuses
it) would otherwise leave the workers waiting for ever behind a healthy probe."""


class Liveness:
    def __init__(self, blocked_after: float = BLOCKED_AFTER, beat: float = BEAT) -> None:
        self.blocked_after, self.beat_every = blocked_after, beat
        self.last_beat = time.monotonic()
        self.tasks: dict[str, tuple[asyncio.Task[None], bool]] = {}
        self.ready = False
        self.role = "starting"
        self.expected: dict[str, tuple[Callable[[], bool], float]] = {}

    async def beat(self) -> None:
        """The heartbeat: it only runs while the loop is free to run it."""
        while True:
            self.last_beat = time.monotonic()
            await asyncio.sleep(self.beat_every)

    def watch(self, name: str, task: asyncio.Task[None], may_return: bool = False) -> None:
        """A task that must run as long as the process does; with ``may_return`` it may also
        end without an error (an extension that is switched off)."""
        self.tasks[name] = (task, may_return)

    def expect(self, name: str, done: Callable[[], bool], within: float = SYNC_WITHIN) -> None:
        """``done`` must hold within ``within`` seconds from now."""
        self.expected[name] = (done, time.monotonic() + within)

    def alive(self) -> tuple[bool, str]:
        now = time.monotonic()
        blocked = now - self.last_beat
        if blocked > self.blocked_after:
            return False, f"event loop blocked for {blocked:.1f}s"
        late = sorted(n for n, (done, by) in list(self.expected.items()) if now > by and not done())
        if late:
            return False, f"not yet: {', '.join(late)}"
        ended = sorted(
            name
            for name, (task, may_return) in self.tasks.items()
            if task.done() and not (may_return and _returned(task))
        )
        if ended:
            return False, f"ended: {', '.join(ended)}"
        return True, f"ok ({self.role})"

    def readiness(self) -> tuple[bool, str]:
        ok, why = self.alive()
        if ok and not self.ready:
            return False, f"not ready ({self.role})"
        return ok, why


def _returned(task: asyncio.Task[None]) -> bool:
    """Ended without an error (read from another thread: a done task no longer changes)."""
    return not task.cancelled() and task.exception() is None
