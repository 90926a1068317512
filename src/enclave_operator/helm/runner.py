"""Running the ``helm`` binary to change releases: install, upgrade, uninstall.

Only changes go through ``helm``; the state of a release is read from its Secrets (see
``releases``), so nothing here runs ``helm status``, ``list`` or ``get``. No ``--wait``
either: the operator watches the owned objects itself and must not block on a rollout.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave_operator.helm.releases import OPERATOR_LABEL

DEFAULT_TIMEOUT = 120.0
"""Seconds before a ``helm`` process is killed; without --wait it normally needs a few."""

APPLY_FLAGS = ("--server-side=false",)
"""How install and upgrade write objects: Helm's client-side three-way strategic merge.

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


SKIP_VALIDATION = ("--disable-openapi-validation",)
"""Install and upgrade do not validate the rendered objects against the API server's OpenAPI
schema: reading and parsing it is about half of a helm process's CPU (0.1 s of 0.2 s, measured
with benchmarks/peer). It can only find a bug in the chart, and the charts are fixed and
tested; the values are still checked against values.schema.json, and the API server still
rejects an invalid object (an unknown field would be dropped with a warning instead)."""


@dataclass(frozen=True)
class HelmResult:
    """Outcome of one ``helm`` command; ``error`` is Helm's own stderr text, stripped."""

    ok: bool
    revision: int | None
    error: str


class HelmRunner:
    """Runs ``helm`` as an asyncio subprocess, values on stdin, one command per call."""

    def __init__(
        self, binary: Path, kubeconfig: str | None, *, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.timeout = timeout
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    def busy(self, release: str, namespace: str) -> bool:
        """A helm process of ours is acting on the release right now: its pending record is
        work in progress, not something a dead process left behind."""
        lock = self._locks.get((namespace, release))
        return lock is not None and lock.locked()

    async def install(
        self, release: str, namespace: str, chart: Path, values: Mapping[str, Any]
    ) -> HelmResult:
        """Install a new release; the namespace must exist (it is never created here)."""
        return await self._apply("install", release, namespace, chart, values, _LABELS)

    async def upgrade(
        self, release: str, namespace: str, chart: Path, values: Mapping[str, Any]
    ) -> HelmResult:
        """Upgrade to exactly ``values`` on top of the chart's defaults (not the last ones)."""
        extra = ("--reset-values", *_LABELS)
        return await self._apply("upgrade", release, namespace, chart, values, extra)

    async def rollback(self, release: str, namespace: str, revision: int) -> HelmResult:
        """Back to a revision that worked; Helm copies its labels, manifest and values."""
        args = ["rollback", release, str(revision), "--namespace", namespace, *APPLY_FLAGS]
        return await self._run(args, stdin=None)

    async def uninstall(self, release: str, namespace: str) -> HelmResult:
        """Delete the release's objects and its records (objects marked
        ``helm.sh/resource-policy: keep``, the CAS database claim, stay)."""
        return await self._run(["uninstall", release, "--namespace", namespace], stdin=None)

    async def _apply(
        self,
        verb: str,
        release: str,
        namespace: str,
        chart: Path,
        values: Mapping[str, Any],
        extra: Sequence[str],
    ) -> HelmResult:
        args = [
            verb,
            release,
            str(chart),
            "--namespace",
            namespace,
            "--values",
            "-",
            "--output",
            "json",
            *APPLY_FLAGS,
            *SKIP_VALIDATION,
            *extra,
        ]
        # JSON is YAML, and it keeps strings such as "1Gi" or "on" from being reinterpreted.
        return await self._run(args, stdin=json.dumps(values).encode())

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = self.kubeconfig
        return env

    async def _run(self, args: list[str], stdin: bytes | None) -> HelmResult:
        """One helm process per release at a time: args[1] is the release, and --namespace
        always follows in ``args``."""
        key = (args[args.index("--namespace") + 1], args[1])
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            return await self._spawn(args, stdin)

    async def _spawn(self, args: list[str], stdin: bytes | None) -> HelmResult:
        proc = await asyncio.create_subprocess_exec(
            str(self.binary),
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self._env(),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), self.timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return HelmResult(
                False, None, f"helm {args[0]} {args[1]} killed after {self.timeout:g}s"
            )
        except asyncio.CancelledError:
            # A cancelled reconcile must not leave helm running unattended.
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            raise
        if proc.returncode != 0:
            return HelmResult(False, None, err.decode(errors="replace").strip())
        return HelmResult(True, _revision(out), "")


_LABELS = ("--labels", f"{OPERATOR_LABEL[0]}={OPERATOR_LABEL[1]}")


def _revision(stdout: bytes) -> int | None:
    """The ``version`` of the release in ``-o json`` output; uninstall prints none."""
    try:
        doc = json.loads(stdout)
    except ValueError:
        return None
    version = doc.get("version") if isinstance(doc, dict) else None
    return version if isinstance(version, int) else None
