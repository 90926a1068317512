"""Objects a chart marks ``helm.sh/resource-policy: keep``, which outlive an uninstall, and
whether the CR's spec wants them deleted with it. Pure, like the values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave_operator.api.cas import WHEN_DELETED_DELETE
from enclave_operator.api.kinds import CAS, Kind
from enclave_operator.helm.releases import ObjectRef


def kept_objects(kind: Kind, release: str, namespace: str) -> tuple[ObjectRef, ...]:
    """The CAS database claim (the CAS chart's ``pvc.yaml`` names it so)."""
    if kind != CAS:
        return ()
    return (ObjectRef("v1", "PersistentVolumeClaim", namespace, f"{release}-db"),)


def delete_kept(kind: Kind, cr: Mapping[str, Any]) -> bool:
    """Only ``spec.persistence.whenDeleted: Delete`` lets the claim go with the CAS."""
    if kind != CAS:
        return False
    persistence = (cr.get("spec") or {}).get("persistence") or {}
    return bool(persistence.get("whenDeleted") == WHEN_DELETED_DELETE)
