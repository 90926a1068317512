"""The webhook in a child process of the operator.

Admission answers within the API server's timeout while pods are being created, so it must not
share an interpreter (and its GIL) with kopf's handling of every watch event and the reconciles:
measured at 200 pods/s on two cores, the webhook inside the operator process reached 112
admissions/s with p99 0.87 s; the same server alone in a process reached 200/s with p99 0.1 s.
The child is ``python -m enclave_operator.webhook`` (``__main__``): the same WebhookRunner,
which reads its settings and manages its certificate and registration by itself. It receives
SIGTERM when the operator dies, even by SIGKILL (PR_SET_PDEATHSIG), and is restarted with
backoff when it exits on its own with an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence

log = logging.getLogger(__name__)

OFF = 0
"""The child's exit status when the webhook is off (no settings ConfigMap): not restarted."""
BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
STOP_GRACE = 10.0
"""Seconds the child gets to remove a local configuration after SIGTERM, then SIGKILL."""
PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Called first thing in the child: SIGTERM when the operator's thread that started it ends
    (Linux). Set here rather than in a preexec_fn, which is unsafe in a process with threads;
    a parent that died before this line is caught by comparing ``parent``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("webhook: prctl(PR_SET_PDEATHSIG): errno %d", ctypes.get_errno())
    if os.getppid() != parent:
        raise SystemExit("webhook: the operator is gone")


def command(
    operator_namespace: str,
    config_name: str,
    address: str,
    port: int | None,
    kubeconfig: str | None,
    log_format: str,
    verbose: bool,
) -> list[str]:
    """The child's argv (see ``__main__``)."""
    argv = [sys.executable, "-m", "enclave_operator.webhook", operator_namespace, config_name]
    argv += ["--parent", str(os.getpid()), "--address", address, "--log-format", log_format]
    if port is not None:
        argv += ["--port", str(port)]
    if kubeconfig:
        argv += ["--kubeconfig", kubeconfig]
    if verbose:
        argv.append("--verbose")
    return argv


class WebhookProcess:
    """An operator extension (controller.run) that keeps the webhook's child process running."""

    every_replica = True
    """Admission must not wait for a leader: every replica serves it (see WebhookRunner)."""

    def __init__(
        self, argv: Sequence[str], settings: Callable[[], Awaitable[object | None]] | None = None
    ) -> None:
        self.argv, self.settings = list(argv), settings
        self.starts = 0

    def register(self, registry: object) -> None:
        """No kopf watches: the webhook needs none."""

    async def run(self) -> None:
        """Until cancelled, or until the webhook is off: ``settings`` finds none (checked here
        first, so that an operator without a webhook starts no process) or the child says so."""
        if self.settings is not None and await self.settings() is None:
            return
        failures = 0
        while True:
            code = await self._once()
            if code == OFF:
                log.info("webhook: off (its process ended with status 0)")
                return
            delay = BACKOFF[min(failures, len(BACKOFF) - 1)]
            failures += 1
            log.error("webhook: its process ended with status %s; again in %.0fs", code, delay)
            await asyncio.sleep(delay)

    async def _once(self) -> int:
        proc = await asyncio.create_subprocess_exec(*self.argv, stdin=asyncio.subprocess.DEVNULL)
        self.starts += 1
        try:
            return await proc.wait()
        except asyncio.CancelledError:
            await _stop(proc)
            raise


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM (a local child removes its configuration), SIGKILL after STOP_GRACE. Shielded:
    the operator's shutdown cancels its tasks more than once."""

    async def stop() -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.shield(stop())
