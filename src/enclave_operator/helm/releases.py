"""Helm's release records, decoded from the Secrets Helm stores them in.

Reading a release's state this way costs no `helm` process and no API request: the Secrets come
from a watch. `helm` runs only to install, upgrade and uninstall.
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import yaml

SECRET_TYPE = "helm.sh/release.v1"
CLUSTER_SCOPED_KINDS = frozenset({"ClusterRole", "ClusterRoleBinding"})
"""Kinds a chart may create that have no namespace: their refs carry None, as the watches do."""
OPERATOR_LABEL = ("enclave.dev/managed-by", "enclave-operator")
"""Put on every release the operator installs (helm --labels, kept by upgrade and rollback):
only records carrying it are watched, so a release of the same name made by anyone else is
never taken for ours, upgraded, rolled back or uninstalled."""
SECRET_LABEL_SELECTOR = f"owner=helm,{OPERATOR_LABEL[0]}={OPERATOR_LABEL[1]}"


class ReleaseStatus(StrEnum):
    UNKNOWN = "unknown"
    DEPLOYED = "deployed"
    UNINSTALLED = "uninstalled"
    SUPERSEDED = "superseded"
    FAILED = "failed"
    UNINSTALLING = "uninstalling"
    PENDING_INSTALL = "pending-install"
    PENDING_UPGRADE = "pending-upgrade"
    PENDING_ROLLBACK = "pending-rollback"

    @property
    def steady(self) -> bool:
        """False while Helm is in the middle of changing the release."""
        return self not in _TRANSITIONAL


_TRANSITIONAL = {
    ReleaseStatus.UNINSTALLING,
    ReleaseStatus.PENDING_INSTALL,
    ReleaseStatus.PENDING_UPGRADE,
    ReleaseStatus.PENDING_ROLLBACK,
}


@dataclass(frozen=True)
class ObjectRef:
    """One object of a release's manifest."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    @property
    def description(self) -> str:
        """Unique per CR: the prefix of the object's conditions in the CR's status."""
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    revision: int
    status: ReleaseStatus
    description: str
    manifest: str
    chart_version: str
    values: Mapping[str, Any] = field(default_factory=dict)  # the values it was given
    modified_at: float | None = None  # unix time of Helm's last write to the record
    labels: Mapping[str, str] = field(default_factory=dict)  # the record Secret's labels
    rollback_of: int = 0  # for a rollback, the revision it went back to (Helm's own field)

    @property
    def ours(self) -> bool:
        return self.labels.get(OPERATOR_LABEL[0]) == OPERATOR_LABEL[1]

    def objects(self, default_namespace: str) -> list[ObjectRef]:
        return manifest_objects(self.manifest, default_namespace)


class ReleaseDecodeError(ValueError):
    """A Secret labelled as a Helm release whose payload cannot be read."""


def decode_payload(data: str) -> dict[str, Any]:
    """The JSON in a release Secret's `data.release`: base64 (the Secret's) of base64 of gzip."""
    try:
        raw = base64.b64decode(base64.b64decode(data))
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        payload = json.loads(raw)
    except (ValueError, OSError) as e:
        raise ReleaseDecodeError(f"unreadable Helm release payload: {e}") from e
    if not isinstance(payload, dict):
        raise ReleaseDecodeError("Helm release payload is not an object")
    return payload


def from_secret(secret: Mapping[str, Any]) -> Release:
    payload = decode_payload(secret["data"]["release"])
    labels = secret["metadata"].get("labels") or {}
    info = payload.get("info") or {}
    chart_meta = (payload.get("chart") or {}).get("metadata") or {}
    try:
        status = ReleaseStatus(info.get("status", "unknown"))
    except ValueError:
        status = ReleaseStatus.UNKNOWN
    return Release(
        name=payload["name"],
        namespace=payload.get("namespace") or secret["metadata"]["namespace"],
        revision=int(payload.get("version", 0)),
        status=status,
        description=str(info.get("description", "")),
        manifest=str(payload.get("manifest", "")),
        chart_version=str(chart_meta.get("version", "")),
        values=payload.get("config") or {},
        modified_at=_last_write(secret["metadata"], labels),
        labels=dict(labels),
        rollback_of=_int(info.get("rollback_revision")),
    )


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _last_write(meta: Mapping[str, Any], labels: Mapping[str, Any]) -> float | None:
    """Helm labels a record `createdAt` when it creates it and `modifiedAt` (dropping
    `createdAt`) when it updates it; a pending-install or pending-upgrade record has only been
    created. The Secret's own creationTimestamp covers records from any other writer."""
    for value in (labels.get("modifiedAt"), labels.get("createdAt")):
        if (unix := _unix(value)) is not None:
            return unix
    created = meta.get("creationTimestamp")
    if not created:
        return None
    try:
        stamp = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return None
    return stamp.timestamp()


def _unix(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def latest(releases: Iterable[Release]) -> Release | None:
    """The release Helm considers current: the highest revision."""
    return max(releases, key=lambda r: r.revision, default=None)


def last_good(releases: Iterable[Release]) -> int | None:
    """The revision to roll back to when the latest one failed or was left pending: the
    deployed one below it (a failed or interrupted upgrade leaves its predecessor deployed),
    else the newest superseded one, as Helm's own rollback-on-failure chooses."""
    records = sorted(releases, key=lambda r: r.revision)
    if len(records) < 2:
        return None
    older = records[:-1]
    for status in (ReleaseStatus.DEPLOYED, ReleaseStatus.SUPERSEDED):
        found = [r.revision for r in older if r.status is status]
        if found:
            return max(found)
    return None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader where PyYAML has it: the pure-Python one takes tens of milliseconds
per manifest, and every reconcile pass reads the release's objects."""


def manifest_objects(manifest: str, default_namespace: str) -> list[ObjectRef]:
    """The objects of a release's manifest; parsed once per manifest, as records never change
    (a new revision is a new record with a manifest of its own)."""
    return list(_manifest_objects(manifest, default_namespace))


@functools.lru_cache(maxsize=1024)
def _manifest_objects(manifest: str, default_namespace: str) -> tuple[ObjectRef, ...]:
    refs = []
    for doc in yaml.load_all(manifest, Loader=_LOADER):
        if not isinstance(doc, dict) or "kind" not in doc:
            continue
        meta = doc.get("metadata") or {}
        refs.append(
            ObjectRef(
                api_version=doc["apiVersion"],
                kind=doc["kind"],
                namespace=None
                if doc["kind"] in CLUSTER_SCOPED_KINDS
                else meta.get("namespace") or default_namespace,
                name=meta["name"],
            )
        )
    return tuple(refs)
