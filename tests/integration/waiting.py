"""Waiting for the cluster to reach a state, with the last observation in the failure."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    observe: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float = 60,
    what: str = "condition",
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        seen = observe()
        if done(seen):
            return seen
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {seen!r}")
        time.sleep(0.2)
