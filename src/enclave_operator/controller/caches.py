"""Read access to kopf's indexes and the node and pod views: what the watches have seen,
without API requests.

kopf fills every index from its initial listing before any handler runs, and the workers wait
for the node and pod streams' first listing (``views.listed``), so the worker never mistakes
"not listed yet" for "absent" (which would install a release twice).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.controller.views import ClusterViews
from enclave_operator.figures.cluster import NodeView, PodView
from enclave_operator.helm.releases import ObjectRef, Release
from enclave_operator.kube import OWNED_KINDS
from enclave_operator.reconcile.observe import LookupError_

SERVICE_KINDS: tuple[Kind, ...] = (CAS, LAS, SGXPLUGIN)
KIND_BY_PLURAL = {k.plural: k for k in SERVICE_KINDS}
RELEASES_INDEX = "helm_releases"
OWNERS_INDEX = "release_owners"


class CRKey(NamedTuple):
    plural: str
    namespace: str | None
    name: str

    @property
    def kind(self) -> Kind:
        return KIND_BY_PLURAL[self.plural]


def cr_index(kind: Kind) -> str:
    return f"crs_{kind.plural}"


def owned_index(api_version: str, kind: str) -> str:
    return f"owned_{OWNED_KINDS[(api_version, kind)][1]}"


def cached(body: Mapping[str, Any]) -> dict[str, Any]:
    """An object as the indexes keep it: without its managedFields, which nothing here reads
    and which repeat every field a manager set (as client-go's TransformStripManagedFields)."""
    meta = body.get("metadata") or {}
    if "managedFields" not in meta:
        return dict(body)
    return {**body, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


@dataclass(frozen=True)
class ReleaseEntry:
    """A release record, or why its Secret could not be read; ``secret``: the Secret's
    identity (apiVersion, kind, namespace, name, uid, labels), for the gap sweeper."""

    release: Release | None
    error: str | None = None
    secret: Mapping[str, Any] | None = None


def secret_identity(body: Mapping[str, Any]) -> dict[str, Any]:
    meta = body.get("metadata") or {}
    keep = ("namespace", "name", "uid", "labels")
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {k: meta.get(k) for k in keep}}


class Caches:
    def __init__(self) -> None:
        self._indexes: Mapping[str, Any] = {}
        self.dead: Callable[[Mapping[str, Any]], bool] = lambda body: False
        """Set by the gap sweeper: an owned object deleted while the watch was down."""
        self.views = ClusterViews()
        """Nodes and the pods the figures read (controller/clusterwatch.py fills them)."""

    def bind(self, handler_kwargs: Mapping[str, Any]) -> None:
        """kopf hands the indexes to handlers only; remember them for the workers."""
        if not self._indexes:
            self._indexes = {k: v for k, v in handler_kwargs.items() if _is_ours(k)}

    @property
    def ready(self) -> bool:
        return bool(self._indexes)

    def _first(self, index: str, key: Any) -> Any:
        store = self._indexes[index].get(key)
        return next(iter(store), None) if store else None

    def cr(self, key: CRKey) -> Mapping[str, Any] | None:
        body: Mapping[str, Any] | None = self._first(cr_index(key.kind), (key.namespace, key.name))
        return body

    def releases(self, namespace: str, name: str) -> tuple[list[Release], str | None]:
        store = self._indexes[RELEASES_INDEX].get((namespace, name)) or ()
        entries: list[ReleaseEntry] = [e for e in store if not (e.secret and self.dead(e.secret))]
        errors = [e.error for e in entries if e.error]
        return [e.release for e in entries if e.release], (errors[0] if errors else None)

    def owner_of_release(self, namespace: str, name: str) -> CRKey | None:
        """The CR whose release this is (one owners index per CR kind)."""
        for index in self._indexes:
            if index.startswith(OWNERS_INDEX) and (owner := self._first(index, (namespace, name))):
                found: CRKey = owner
                return found
        return None

    def keys(self, kind: Kind) -> list[CRKey]:
        index = self._indexes.get(cr_index(kind)) or {}
        return [CRKey(kind.plural, ns, name) for ns, name in index]

    def nodes(self) -> list[NodeView]:
        return self.views.nodes()

    def release_pods(self, namespace: str, release: str) -> list[PodView]:
        return self.views.release_pods(namespace, release)

    def sgx_pods(self) -> list[PodView]:
        return self.views.sgx_pods()

    def release_records(self) -> list[Mapping[str, Any]]:
        """The identities of the cached release records' Secrets."""
        index = self._indexes.get(RELEASES_INDEX) or {}
        return [e.secret for store in index.values() for e in store if e.secret]

    def lookup(self, ref: ObjectRef) -> Mapping[str, Any] | None:
        if (ref.api_version, ref.kind) not in OWNED_KINDS:
            raise LookupError_(f"{ref.kind} is not a kind the operator watches")
        store = self._indexes[owned_index(ref.api_version, ref.kind)].get((ref.namespace, ref.name))
        return next((b for b in store or () if not self.dead(b)), None)

    def owned(self, plural: str) -> list[Mapping[str, Any]]:
        """Every cached object of an owned kind (``plural`` as in OWNED_KINDS)."""
        index = self._indexes.get(f"owned_{plural}") or {}
        return [body for store in index.values() for body in store]


def _is_ours(name: str) -> bool:
    return name == RELEASES_INDEX or (name.startswith(("crs_", "owned_", OWNERS_INDEX)))
