"""Which tag to move to: pure, so every rule is a unit test."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

# semver.org 2.0.0, without a leading "v": tags such as "latest", "1.2" or "v1.2.3" are not
# versions and are ignored.
_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)

SCOPES = ("Patch", "Minor", "Major")


class Version(NamedTuple):
    major: int
    minor: int
    patch: int
    prerelease: str = ""

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{self.prerelease}" if self.prerelease else core


def parse(tag: str) -> Version | None:
    m = _SEMVER.match(tag)
    if m is None:
        return None
    return Version(int(m[1]), int(m[2]), int(m[3]), m[4] or "")


def _pre_key(pre: str) -> tuple[tuple[int, int | str], ...]:
    """semver precedence of pre-release identifiers: numbers below names, numbers by value."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in pre.split("."))


def precedence(v: Version) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
    """A release ranks above its pre-releases; build metadata does not count."""
    if not v.prerelease:
        return (v.major, v.minor, v.patch, 1, ())
    return (v.major, v.minor, v.patch, 0, _pre_key(v.prerelease))


def allowed(current: Version, candidate: Version, scope: str) -> bool:
    """Within the scope: Patch keeps major.minor, Minor keeps major, Major takes any."""
    if scope == "Patch":
        return (candidate.major, candidate.minor) == (current.major, current.minor)
    if scope == "Major":
        return True
    return candidate.major == current.major


def scope_text(current: Version, scope: str) -> str:
    if scope == "Patch":
        return f"{current.major}.{current.minor}.x"
    if scope == "Major":
        return "any version"
    return f"{current.major}.x"


@dataclass(frozen=True)
class Choice:
    """The tag to move to (None: stay), and why, for the condition's message."""

    tag: str | None
    current: Version
    reason: str


def choose(current_tag: str, tags: Iterable[str], scope: str = "Minor") -> Choice | str:
    """The newest version above the running one within ``scope``; a str says why none can be
    chosen (the running tag is no version). Pre-releases are never chosen, and a tag whose
    version equals another's (``1.2.3+build``) does not count as newer."""
    current = parse(current_tag)
    if current is None:
        return f"the image tag {current_tag!r} is not a semantic version (MAJOR.MINOR.PATCH)"
    best: tuple[Version, str] | None = None
    for tag in tags:
        v = parse(tag)
        if v is None or v.prerelease or not allowed(current, v, scope):
            continue
        if precedence(v) <= precedence(current):
            continue
        if (
            best is None
            or precedence(v) > precedence(best[0])
            or (precedence(v) == precedence(best[0]) and tag < best[1])
        ):
            best = (v, tag)
    within = scope_text(current, scope)
    if best is None:
        return Choice(None, current, f"{current_tag} is the newest within {within}")
    return Choice(best[1], current, f"from {current_tag} to {best[1]}")
