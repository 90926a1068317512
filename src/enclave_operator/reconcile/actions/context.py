"""What an action needs to do its one side effect, and what it reports back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave_operator.api.kinds import Kind
from enclave_operator.helm.runner import HelmRunner
from enclave_operator.kube import Kube


@dataclass(frozen=True)
class Context:
    kind: Kind
    cr: Mapping[str, Any]
    release_name: str
    release_namespace: str
    values: Mapping[str, Any]
    chart: Path
    helm: HelmRunner
    kube: Kube

    @property
    def cr_path(self) -> str:
        meta = self.cr["metadata"]
        return self.kube.custom_path(self.kind, meta.get("namespace"), meta["name"])


@dataclass(frozen=True)
class Outcome:
    """How an action went; `expect` says what the watches must show before the next decision."""

    ok: bool
    message: str
    helm_error: str | None = None  # Helm's own text when a helm command failed
    expect_release: tuple[int, str] | None = None  # (revision, status) Helm reported
    expect_release_gone: bool = False
    expect_version: str | None = None  # the target's resourceVersion after the action's write
    cr: Mapping[str, Any] | None = None  # the CR as the action's write of it left it
