"""Upgrades that leave the same drift behind: spaced exponentially, and stopped after
MAX_DRIFT_UPGRADES (the decision then reports DriftPersists instead of upgrading).

Something that fights the operator (another controller, a mutating webhook, a template that
renders differently each time) would otherwise make a new Helm revision on every pass,
forever. The same drift counts as new again only after it stayed repaired for DRIFT_QUIET
(someone editing the same field again next week), or once the spec changes. The count is
kept per CR in memory: a restarted operator tries again, three times.
"""

from __future__ import annotations

from dataclasses import dataclass

from enclave_operator.reconcile.model import Action, ActionKind, Decision

DRIFT_BACKOFF = 5.0  # seconds before the second upgrade for the same drift; doubles after
DRIFT_QUIET = 60.0  # seconds the drift must stay repaired before it counts as new again


def _repairs_drift(action: Action | None) -> bool:
    return action is not None and action.kind is ActionKind.UPGRADE and bool(action.drift)


@dataclass
class DriftRepairs:
    drift: tuple[str, ...] = ()  # what the last upgrades were made to repair
    upgrades: int = 0  # upgrades made for exactly that drift, in a row
    not_before: float = 0.0  # monotonic time before which none more is made
    clean_since: float | None = None  # since when passes show no drift
    reported: bool = False  # the Event for DriftPersists went out

    def seen(self, decision: Decision, now: float) -> bool:
        """Called with every decision made on synced caches. True: report DriftPersists now."""
        action = decision.action
        if action is not None and action.kind is ActionKind.UPGRADE and not action.drift:
            self._reset(())  # the spec changed: whatever drifted is judged afresh
        if not decision.drift:
            self.clean_since = now if self.clean_since is None else self.clean_since
            return False
        quiet = self.clean_since is not None and now - self.clean_since > DRIFT_QUIET
        if decision.drift != self.drift or quiet:
            self._reset(decision.drift)
        self.clean_since = None
        persists = any(
            c.type == "DriftPersists" and c.status == "True" for c in decision.conditions
        )
        if persists and not self.reported:
            self.reported = True
            return True
        return False

    def _reset(self, drift: tuple[str, ...]) -> None:
        self.drift, self.upgrades, self.not_before, self.reported = drift, 0, 0.0, False

    def wait(self, action: Action, now: float) -> float:
        """Seconds before this upgrade may run; 0 for anything else."""
        return max(0.0, self.not_before - now) if _repairs_drift(action) else 0.0

    def upgraded(self, action: Action, now: float) -> None:
        if not _repairs_drift(action):
            return
        self.drift = action.drift
        self.upgrades += 1
        self.not_before = now + DRIFT_BACKOFF * 2.0 ** (self.upgrades - 1)
