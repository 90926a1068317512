"""The simulated pods' addresses stay on this machine.

kwok gives the pods it simulates addresses from its pod range, which nothing serves, and the
operator asks every ready CAS and LAS pod for its version at its address. With no route of its
own that range would follow the default route out of the machine; an ``unreachable`` route
makes each such connection fail at once, here. The route is shared by the dev clusters of the
machine: each holds a marker file while it is up, and the last one down removes the route.
Adding a route needs root; without it the dev cluster says so and goes on.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

MARKERS = Path("/run/enclave-dev/fake-pod-route")


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    MARKERS.mkdir(parents=True, exist_ok=True)
    with (MARKERS.parent / "fake-pod-route.lock").open("w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def _marker(directory: Path) -> Path:
    return MARKERS / hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:16]


def _ip_route(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "route", *args], capture_output=True, text=True, timeout=30)


def hold(directory: Path, cidr: str) -> bool:
    """Route ``cidr`` nowhere while this cluster is up; False when not allowed to (not root)."""
    if os.geteuid() != 0:
        return False
    with _locked():
        done = _ip_route("replace", "unreachable", cidr)
        if done.returncode != 0:
            return False
        _marker(directory).touch()
    return True


def release(directory: Path, cidr: str) -> None:
    """This cluster no longer needs the route; the last one removes it."""
    if os.geteuid() != 0 or not MARKERS.is_dir():
        return
    with _locked():
        _marker(directory).unlink(missing_ok=True)
        if not any(MARKERS.iterdir()):
            _ip_route("del", "unreachable", cidr)
