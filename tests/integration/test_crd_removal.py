"""Removing CRDs right after they were created, as a rolled-back install does.

The API server's CRD cleanup lists remaining instances through the kind's watch cache. Right
after creation (or after a sibling CRD of the group went away) that cache may still be
initializing; the cleanup then gets 429 and backs off for minutes. Before ``remove_crds``
started the caches itself, about one round in eight took close to five minutes here.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from functools import partial
from typing import Any

from enclave_operator.api import crds
from enclave_operator.api.kinds import ALL_KINDS, Kind
from enclave_operator.install.cluster import Cluster as Api
from enclave_operator.install.helmcli import Helm
from enclave_operator.install.local import LocalOperator
from enclave_operator.install.remove import Remover, crd_path
from tests.integration.conftest import Cluster

ROUNDS = 10
FAST = 30.0
"""Seconds a removal of CRDs without instances may take; the cleanup's backoff exceeds it."""


def fresh_crds() -> list[tuple[Kind, dict[str, Any]]]:
    """The five CRDs, in API groups of their own, grouped as the real ones are."""
    tag = uuid.uuid4().hex[:8]
    made = []
    for kind in ALL_KINDS:
        fresh = replace(kind, group=f"{kind.group.split('.')[0]}-{tag}.test.enclave.dev")
        body = crds.crd(kind)
        body["metadata"]["name"] = fresh.crd_name
        body["spec"]["group"] = fresh.group
        body["spec"]["names"].pop("shortNames", None)
        made.append((fresh, body))
    return made


def established(api: Api, kinds: list[Kind]) -> bool:
    for kind in kinds:
        conditions = ((api.find(crd_path(kind)) or {}).get("status") or {}).get("conditions")
        if not any(c["type"] == "Established" and c["status"] == "True" for c in conditions or []):
            return False
    return True


def test_fresh_crds_are_removed_without_waiting_for_the_cleanup_backoff(
    cluster: Cluster,
) -> None:
    api = Api.connect(cluster.kubeconfig)
    said: list[str] = []
    remover = Remover(
        api,
        Helm(api.kubeconfig),
        LocalOperator.for_cluster(api),
        said.append,
        operator_namespace="enclave-operator",
        timeout=FAST,
        force=False,
    )
    took = []
    for _ in range(ROUNDS):
        made = fresh_crds()
        for _, body in made:
            api.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body)
        kinds = [kind for kind, _ in made]
        assert api.wait(partial(established, api, kinds), 60, every=0.1)
        start = time.monotonic()
        remover.remove_crds(kinds)
        took.append(time.monotonic() - start)
        assert all(api.find(crd_path(k)) is None for k in kinds)
    assert max(took) < FAST, f"removals took {[round(t, 1) for t in took]} s"
    assert said == [f"deleted {len(ALL_KINDS)} CRDs"] * ROUNDS
