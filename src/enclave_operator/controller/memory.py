"""What the operator remembers about a CR between passes: its last Helm failure, and the
effects of its own writes that the watches have not shown yet (controller-runtime calls these
expectations). Deciding on a cache that predates our own write would repeat the write."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from enclave_operator.helm.releases import ObjectRef, Release, ReleaseStatus, latest
from enclave_operator.reconcile.actions.context import Outcome

EXPECT_TIMEOUT = 30.0


def _newer_or_same(cached: Mapping[str, Any] | None, rv: str) -> bool:
    if cached is None:
        return True  # deleted since: nothing left to wait for
    seen = str(cached["metadata"].get("resourceVersion", ""))
    if seen.isdigit() and rv.isdigit():
        return int(seen) >= int(rv)
    return seen == rv


@dataclass
class Memory:
    last_failure: str | None = None
    cr_version: str | None = None
    object_versions: dict[ObjectRef, str] = field(default_factory=dict)
    release: tuple[int, str] | None = None
    release_gone: bool = False
    since: float = 0.0

    def expect(self, outcome: Outcome, target: ObjectRef | None, cr_path: str) -> None:
        for path, rv in outcome.expect_versions.items():
            if path == cr_path:
                self.cr_version = rv
            elif target is not None:
                self.object_versions[target] = rv
        self.release = outcome.expect_release
        self.release_gone = outcome.expect_release_gone
        self.since = time.monotonic()

    def expect_cr(self, rv: str) -> None:
        self.cr_version = rv
        self.since = time.monotonic()

    def synced(
        self,
        cr: Mapping[str, Any],
        releases: Sequence[Release],
        lookup: Any,
    ) -> bool:
        """True once every write of ours shows in the caches (or waiting has timed out)."""
        if time.monotonic() - self.since > EXPECT_TIMEOUT:
            self.clear()
            return True
        if self.cr_version and not _newer_or_same(cr, self.cr_version):
            return False
        for ref, rv in self.object_versions.items():
            if not _newer_or_same(lookup(ref), rv):
                return False
        record = latest(releases)
        if self.release_gone and record is not None:
            return False
        if self.release is not None:
            revision, status = self.release
            if record is None or record.revision < revision:
                return False
            if record.revision == revision and record.status is not ReleaseStatus(status):
                return False
        self.clear()
        return True

    def clear(self) -> None:
        self.cr_version = None
        self.object_versions.clear()
        self.release = None
        self.release_gone = False
