"""Changing releases: install, upgrade, rollback, uninstall, through the helm server.

Only changes go through Helm; the state of a release is read from its Secrets (see
``releases``), so nothing here asks for a release's status, list or values. No waiting for
readiness either: the operator watches the owned objects itself and must not block on a
rollout. The helm server (tools/helm-server, see ``server``) acts with helm's own library at
the version of the ``helm`` binary, as ``helm install|upgrade|rollback|uninstall`` would with
the flags in ``CLI_FLAGS``, in one long-lived process instead of one process per action.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave_operator.helm.releases import OPERATOR_LABEL
from enclave_operator.helm.server import HelmServer, ServerGone

DEFAULT_TIMEOUT = 120.0
"""Seconds before an action counts as stuck and the server is killed (and started again on the
next action); without waiting for readiness an action normally needs well under a second."""

_APPLY = ("--server-side=false",)
"""How install, upgrade and rollback write objects: Helm's client-side three-way strategic
merge.

Found by experiment with helm v4.3 against the dev cluster, upgrading with unchanged values:
- server-side apply (v4's default) fails with a field conflict once someone changed a field
  by hand (``kubectl set image`` makes kubectl-set the image's manager), so nothing is put back;
- ``--force-conflicts`` takes the image back but still fails when a hand edit made the API
  server default new fields for the editor (Deployment strategy Recreate -> RollingUpdate
  leaves ``rollingUpdate`` owned by kubectl-patch, invalid next to Recreate);
- ``--server-side=false`` compares the chart with the live object and restores both.
All three recreate an object deleted by hand, and all leave alone fields the chart does not
set, such as the ownerReferences the operator adds. ``--force-replace`` is not an option: it
drops those ownerReferences and cannot replace a bound PersistentVolumeClaim (immutable spec).
No mode repairs a Service port number changed by hand: ports are keyed by number, so the
chart's port is added next to the edited one and the API server rejects the duplicate name;
the object has to be deleted and the upgrade repeated. Install uses the same mode because an
upgrade's ``auto`` would follow the mode of the release's previous revision.
"""


_SKIP_VALIDATION = ("--disable-openapi-validation",)
"""Install and upgrade do not validate the rendered objects against the API server's OpenAPI
schema: reading and parsing it was about half of a helm process's CPU (0.1 s of 0.2 s,
measured with benchmarks/peer). It can only find a bug in the chart, and the charts are fixed and
tested; the values are still checked against values.schema.json, and the API server still
rejects an invalid object (an unknown field would be dropped with a warning instead)."""


_LABELS = ("--labels", f"{OPERATOR_LABEL[0]}={OPERATOR_LABEL[1]}")
"""Every release record carries the operator's label: the release watch selects on it."""

CLI_FLAGS: dict[str, tuple[str, ...]] = {
    "install": (*_APPLY, *_SKIP_VALIDATION, *_LABELS),
    "upgrade": (*_APPLY, *_SKIP_VALIDATION, "--reset-values", *_LABELS),
    "rollback": _APPLY,
    "uninstall": (),
}
"""The ``helm`` command line each action of the server equals (tools/helm-server/actions.go
sets the same fields of helm's actions; values go in as ``--values -``)."""


@dataclass(frozen=True)
class HelmResult:
    """Outcome of one action; ``error`` is Helm's own message as its CLI prints it."""

    ok: bool
    revision: int | None
    error: str


class HelmRunner:
    """Sends actions to the helm server, one at a time per release."""

    def __init__(
        self, binary: Path, kubeconfig: str | None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.timeout = timeout
        self.server = HelmServer(binary, kubeconfig)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def busy(self, release: str, namespace: str) -> bool:
        """An action of ours is under way on the release right now: its pending record is
        work in progress, not something a dead server left behind."""
        lock = self._locks.get((namespace, release))
        return lock is not None and lock.locked()

    async def install(
        self, release: str, namespace: str, chart: Path, values: Mapping[str, Any]
    ) -> HelmResult:
        """Install a new release; the namespace must exist (it is never created here)."""
        return await self._run("install", release, namespace, chart=str(chart), values=values)

    async def upgrade(
        self, release: str, namespace: str, chart: Path, values: Mapping[str, Any]
    ) -> HelmResult:
        """Upgrade to exactly ``values`` on top of the chart's defaults (not the last ones)."""
        return await self._run("upgrade", release, namespace, chart=str(chart), values=values)

    async def rollback(self, release: str, namespace: str, revision: int) -> HelmResult:
        """Back to a revision that worked; Helm copies its labels, manifest and values."""
        return await self._run("rollback", release, namespace, revision=revision)

    async def uninstall(self, release: str, namespace: str) -> HelmResult:
        """Delete the release's objects and its records (objects marked
        ``helm.sh/resource-policy: keep``, the CAS database claim, stay)."""
        return await self._run("uninstall", release, namespace)

    async def close(self) -> None:
        """Stop the server (it also ends by itself when this process ends)."""
        await self.server.close()

    async def _run(self, verb: str, release: str, namespace: str, **extra: Any) -> HelmResult:
        lock = self._locks.setdefault((namespace, release), asyncio.Lock())
        async with lock:
            return await self._call(
                {"verb": verb, "release": release, "namespace": namespace, **extra}
            )

    async def _call(self, request: dict[str, Any]) -> HelmResult:
        what = f"helm {request['verb']} {request['release']}"
        try:
            response = await asyncio.wait_for(self.server.call(request), self.timeout)
        except TimeoutError:
            self.server.kill(f"{what}: the server was killed after another action hung")
            return HelmResult(False, None, f"{what} killed after {self.timeout:g}s")
        except ServerGone as e:
            return HelmResult(False, None, str(e))
        except asyncio.CancelledError:
            # A cancelled reconcile must not leave an action running unattended.
            self.server.kill(f"{what}: the server was killed as an action was cancelled")
            raise
        if not response.get("ok"):
            return HelmResult(False, None, str(response.get("error", "")).strip())
        revision = response.get("revision")
        return HelmResult(True, revision if isinstance(revision, int) and revision else None, "")
