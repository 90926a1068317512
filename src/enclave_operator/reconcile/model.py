"""Plain data passed between observe, decide, act and report; no I/O here."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from enclave_operator.helm.releases import ObjectRef, Release


class Status(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"

    @classmethod
    def of(cls, value: bool | None) -> Status:
        return cls.UNKNOWN if value is None else cls.TRUE if value else cls.FALSE


class State(StrEnum):
    HEALTHY = "HEALTHY"
    PENDING = "PENDING"
    UNHEALTHY = "UNHEALTHY"


class ActionKind(IntEnum):
    """The repairs of the spec's condition table; the value is the priority (1 = first).

    Values above 9 refine a row of the table and are tried where that row is: ROLLBACK
    comes before row 8's uninstall whenever a revision that worked exists, so a failed upgrade
    never costs the objects (or the CAS database) its uninstall would delete; the two KEPT
    actions settle the CAS database claim, which Helm keeps, before row 2 lets the CR go.
    """

    UNINSTALL_DELETED = 1
    REMOVE_FINALIZER = 2
    ADD_FINALIZER = 3
    REMOVE_OWNERS = 4
    SET_OWNER = 5
    INSTALL = 6
    WAIT = 7
    UNINSTALL_FAILED = 8
    UPGRADE = 9
    ROLLBACK = 10
    DISOWN_KEPT = 11
    DELETE_KEPT = 12
    RENEW_CERTIFICATE = 13  # the CAS's TLS certificate, from the CA kept beside it


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    reason: str
    target: ObjectRef | None = None
    rollback: tuple[int, int] | None = None  # (latest revision, revision to go back to)
    drift: tuple[str, ...] = ()  # for an upgrade that repairs drift: what drifted


@dataclass(frozen=True)
class Condition:
    type: str
    status: Status
    reason: str
    message: str = ""


@dataclass(frozen=True)
class OwnerRef:
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool = False


@dataclass(frozen=True)
class ObservedObject:
    """One object of the release's manifest as the cluster has it."""

    ref: ObjectRef
    error: str | None = None  # reading it failed with something other than not-found
    present: bool = False
    deleting: bool = False
    owners: tuple[OwnerRef, ...] = ()
    healthy: bool | None = None  # None: not determinable yet (e.g. a rollout in progress)
    health_message: str = ""
    contradictions: tuple[str, ...] = ()  # attributes that contradict the CR's spec


@dataclass(frozen=True)
class ObservedRelease:
    name: str
    namespace: str
    record: Release | None = None  # the latest revision; None when there is none
    error: str | None = None  # reading the records failed
    stalled: bool = False  # pending for too long: the helm process that began it is gone
    outdated: bool = False  # its values or chart differ from what the CR asks for now
    last_failure: str | None = None  # Helm's error text from this operator's last attempt
    last_good: int | None = None  # the revision that worked before the latest one


@dataclass(frozen=True)
class Observation:
    uid: str
    generation: int
    deleting: bool
    has_finalizer: bool
    release: ObservedRelease
    objects: tuple[ObservedObject, ...] = ()
    objects_error: str | None = None  # the owned objects could not be listed at all
    synced: bool = True  # the caches already show the effect of this operator's last write
    notes: tuple[str, ...] = ()  # facts worth a word in IsHealthy's message
    alerts: tuple[str, ...] = ()  # alerting status figures, each naming its nodes
    starting: tuple[str, ...] = ()  # nodes whose daemon pod is still starting
    figures: tuple[Condition, ...] = ()  # CR conditions the figures state (CertificateValid)
    kept: tuple[ObservedObject, ...] = ()  # objects Helm keeps after an uninstall (CAS's claim)
    delete_kept: bool = False  # the spec asks for them to go with the CR
    drift_repeats: int = 0  # upgrades in a row that left `repeated_drift` behind
    repeated_drift: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    conditions: tuple[Condition, ...]
    state: State
    action: Action | None
    drift: tuple[str, ...] = ()  # what the EqualSpecs conditions say drifted, if anything

    def message(self, type_: str) -> str:
        return next((c.message for c in self.conditions if c.type == type_), "")
