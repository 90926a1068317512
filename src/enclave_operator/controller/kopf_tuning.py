"""kopf settings that remove work the operator never uses."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import kopf


class NoDiffBase(kopf.DiffBaseStorage):
    """No essence is built, kept or compared.

    kopf deep-copies every object of every watch event (twice) to detect changes for
    on.create, on.update and on.field handlers. The operator registers none (indexes and
    on.event only: every event leads to a full, level-triggered pass), so these copies were a
    tenth of its CPU under load. A change-detecting handler added later would need the
    default storage back; `uses_change_detection` makes that check.
    """

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return None  # type: ignore[return-value]  # kopf handles None: nothing to compare

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def uses_change_detection(registry: kopf.OperatorRegistry) -> bool:
    """Whether any handler needs kopf's diff base: on.create/update/delete/resume/field, and
    daemons and timers (their idle time restarts on essential changes)."""
    return bool(registry._changing.get_all_handlers() or registry._spawning.get_all_handlers())


def tune(settings: kopf.OperatorSettings, registry: kopf.OperatorRegistry) -> None:
    """Drop the diff base when nothing reads it."""
    if not uses_change_detection(registry):
        settings.persistence.diffbase_storage = NoDiffBase()
