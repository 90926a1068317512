"""What the operator remembers about a CR between passes: its last Helm failure, and the
effects of its own writes that the watches have not shown yet (controller-runtime calls these
expectations). Deciding on a cache that predates our own write would repeat the write.

A write of the CR itself is one record, with the API's answer: that answer is decided on until
the cache shows the write (``current``). Writes of owned objects and of the release are waited
for (``synced``), up to EXPECT_TIMEOUT."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from enclave_operator.helm.releases import ObjectRef, Release, ReleaseStatus, latest
from enclave_operator.reconcile.actions.context import Outcome

EXPECT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Written:
    """A write of ours: the resourceVersion it produced, and those the cache showed before it.

    resourceVersions are opaque (the API says so: only equality means anything), so "the cache
    has caught up" is: it shows our version, or one that is not among those it showed before
    the write. Caches only move forward, so any other version came after ours.
    """

    version: str
    before: frozenset[str] = frozenset()

    def then(self, version: str, before: str | None) -> Written:
        """A further write while this one is still awaited: every version up to it is stale."""
        stale = self.before | {self.version} | ({before} if before else set())
        return Written(version, frozenset(stale))

    def shown_in(self, cached: Mapping[str, Any] | None) -> bool:
        if cached is None:
            return True  # deleted since: nothing left to wait for
        seen = str(cached["metadata"].get("resourceVersion", ""))
        return seen == self.version or seen not in self.before


def _written(previous: Written | None, version: str, before: str | None) -> Written:
    if previous is not None:
        return previous.then(version, before)
    return Written(version, frozenset({before} if before else ()))


@dataclass
class Memory:
    last_failure: str | None = None
    object_versions: dict[ObjectRef, Written] = field(default_factory=dict)
    release: tuple[int, str] | None = None
    release_gone: bool = False
    since: float = 0.0
    in_flight: bool = False  # half-way through its steps: its events go ahead in the queue
    reported_at: float = 0.0  # when its status was last written (monotonic; 0: never)
    retrying: bool = False  # its last action failed, or its last pass raised
    written_cr: tuple[Written, Mapping[str, Any]] | None = None  # our newest write of the CR

    def wrote_cr(self, body: Mapping[str, Any], seen: str | None) -> None:
        """The CR as the API answered a write of ours, a patch of its metadata or its status
        (``seen``: the version decided on)."""
        version = str(body["metadata"]["resourceVersion"])
        previous = self.written_cr[0] if self.written_cr else None
        self.written_cr = (_written(previous, version, seen), body)

    def current(self, cached: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """The CR to decide on: the cache's, unless it still predates our newest write of it;
        until the watch brings that write, the API's answer to it stands in (client-go's
        MutationCache), so the next step need not wait for the event."""
        if cached is None or self.written_cr is None:
            return cached
        written, body = self.written_cr
        if written.shown_in(cached):
            self.written_cr = None
            return cached
        return body

    def expect(self, outcome: Outcome, target: ObjectRef | None, seen: str | None = None) -> None:
        """What an action wrote besides the CR (which ``wrote_cr`` records); ``seen``: the
        target's resourceVersion in the cache when the action was decided."""
        if outcome.expect_version is not None and target is not None:
            previous = self.object_versions.get(target)
            self.object_versions[target] = _written(previous, outcome.expect_version, seen)
        self.release = outcome.expect_release
        self.release_gone = outcome.expect_release_gone
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
        if self.written_cr and not self.written_cr[0].shown_in(cr):
            return False  # not when ``cr`` is ``current``'s: then our write stands in
        for ref, written in self.object_versions.items():
            if not written.shown_in(lookup(ref)):
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
        """Stop waiting. Our newest write of the CR stays: it is the newest known state."""
        self.object_versions.clear()
        self.release = None
        self.release_gone = False
