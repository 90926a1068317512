"""What one registry check means for the resource: its AutoUpdate condition, whether to move
``spec.image``, and when to look again. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enclave_operator.autoupdate.versions import Choice

CONDITION = "AutoUpdate"
BACKOFF_CAP = 600.0  # seconds: an unreachable registry is asked at most this rarely


@dataclass(frozen=True)
class Verdict:
    status: str  # "True": up to date or updated; "False": cannot check or update
    reason: str
    message: str
    image: str | None = None  # the new spec.image, when moving

    def condition(self) -> dict[str, str]:
        return {"type": CONDITION, "status": self.status, "reason": self.reason,
                "message": self.message}  # fmt: skip


def after_choice(
    choice: Choice | str, image_after: str | None, previous: Mapping[str, Any] | None
) -> Verdict:
    """``image_after``: spec.image with the chosen tag. An update's "from X to Y" stays the
    message while Y is still the newest, so the condition keeps saying what happened last."""
    if isinstance(choice, str):
        return Verdict("False", "NotSemanticVersion", choice)
    if choice.tag is not None and image_after is not None:
        return Verdict("True", "Updated", choice.reason, image=image_after)
    previous = previous or {}
    if previous.get("reason") == "Updated" and str(previous.get("message", "")).endswith(
        f" to {choice.current}"
    ):
        return Verdict("True", "Updated", str(previous["message"]))
    return Verdict("True", "UpToDate", choice.reason)


def next_check(interval: float, failures: int) -> float:
    """The interval while the registry answers; after failures it doubles from the interval,
    up to 10 minutes (or the interval, when that is longer)."""
    if failures <= 0:
        return interval
    return float(min(interval * 2.0 ** min(failures, 16), max(interval, BACKOFF_CAP)))


def same_condition(current: Mapping[str, Any] | None, verdict: Verdict) -> bool:
    if current is None:
        return False
    return all(current.get(k) == v for k, v in verdict.condition().items())


def find_condition(status: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    for c in (status or {}).get("conditions") or []:
        if c.get("type") == CONDITION:
            return c  # type: ignore[no-any-return]
    return None
