"""Changes the API server refuses on update (CEL transition rules), on a real API server:
a cluster-scoped service's namespace, and CAS persistence changes that would lose the claim."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from enclave_operator.api.common import namespace_immutable_message
from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.api.persistence_rules import (
    ACCESS_MODES_MESSAGE,
    DISABLE_MESSAGE,
    SHRINK_MESSAGE,
    STORAGE_CLASS_MESSAGE,
)
from tests.integration.test_crds import Objects, rejection, unique

pytestmark = pytest.mark.integration


@pytest.fixture
def objects(crds, api_client, namespace) -> Objects:
    return Objects(api_client, namespace)


def change(objects: Objects, kind: Kind, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    current = objects.get(kind, name)
    return objects.replace(kind, {**current, "spec": spec})


def refused(objects: Objects, kind: Kind, name: str, spec: dict[str, Any]) -> str:
    with pytest.raises(ApiException) as caught:
        change(objects, kind, name, spec)
    return rejection(caught.value)


@pytest.mark.parametrize("kind", [LAS, SGXPLUGIN], ids=lambda k: k.kind)
def test_the_namespace_of_a_daemon_cannot_move(objects, kind: Kind):
    message = namespace_immutable_message(kind.kind)
    placed, unplaced = unique("placed"), unique("unplaced")
    try:
        objects.create(kind, placed, {"namespace": "team-a"})
        assert message in refused(objects, kind, placed, {"namespace": "team-b"})
        assert message in refused(objects, kind, placed, {})  # back to the operator's
        objects.create(kind, unplaced, {})
        assert message in refused(objects, kind, unplaced, {"namespace": "team-a"})
        # everything else stays editable, the namespace written again as it was
        edited = change(objects, kind, placed, {"namespace": "team-a", "image": "x:2"})
        assert edited["spec"]["image"] == "x:2"
    finally:
        objects.delete(kind, placed)
        objects.delete(kind, unplaced)


PERSISTENT = {
    "enabled": True,
    "storageClass": "fast",
    "accessModes": ["ReadWriteOnce"],
    "size": "2Gi",
}


@pytest.mark.parametrize(
    ("persistence", "message"),
    [
        ({**PERSISTENT, "enabled": False}, DISABLE_MESSAGE),
        ({**PERSISTENT, "storageClass": "slow"}, STORAGE_CLASS_MESSAGE),
        ({k: v for k, v in PERSISTENT.items() if k != "storageClass"}, STORAGE_CLASS_MESSAGE),
        ({**PERSISTENT, "accessModes": ["ReadWriteOncePod"]}, ACCESS_MODES_MESSAGE),
        ({**PERSISTENT, "size": "1Gi"}, SHRINK_MESSAGE),
        ({**PERSISTENT, "size": "2047Mi"}, SHRINK_MESSAGE),
        ({**PERSISTENT, "size": 1000000}, SHRINK_MESSAGE),
    ],
    ids=["disable", "class", "class-removed", "access-modes", "smaller", "smaller-mi", "int"],
)
def test_persistence_changes_that_lose_the_claim_are_refused(objects, persistence, message):
    name = unique("cas")
    objects.create(CAS, name, {"persistence": PERSISTENT})
    try:
        assert message in refused(objects, CAS, name, {"persistence": persistence})
    finally:
        objects.delete(CAS, name)


def test_persistence_changes_applied_in_place_are_accepted(objects):
    name = unique("cas")
    objects.create(CAS, name, {"persistence": {"enabled": False, "storageClass": "fast"}})
    try:
        # while off, anything goes; turning it on too
        off = {"enabled": False, "storageClass": "slow", "size": "10Mi"}
        change(objects, CAS, name, {"persistence": off})
        change(objects, CAS, name, {"persistence": PERSISTENT})
        # growing (as an integer too), moving the mount path, the same modes in another order
        for size in ("3Gi", "3072Mi", 4 * 1024**3):
            grown = change(objects, CAS, name, {"persistence": {**PERSISTENT, "size": size}})
            assert grown["spec"]["persistence"]["size"] == size
        moved = {**PERSISTENT, "size": "4Gi", "mountPath": "/data"}
        persistence = change(objects, CAS, name, {"persistence": moved})["spec"]["persistence"]
        assert persistence == {**moved, "whenDeleted": "Retain"}  # the CRD's default
    finally:
        objects.delete(CAS, name)


def test_access_modes_as_a_set_may_be_reordered(objects):
    name = unique("cas")
    modes = {**PERSISTENT, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"]}
    objects.create(CAS, name, {"persistence": modes})
    try:
        reordered = {**modes, "accessModes": ["ReadOnlyMany", "ReadWriteOnce"]}
        change(objects, CAS, name, {"persistence": reordered})
    finally:
        objects.delete(CAS, name)
