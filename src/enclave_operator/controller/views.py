"""The nodes and pods the figures read, as small views, and which CRs a change to one concerns.

Of the pods only two sorts are kept: those of our releases (the part-of and instance labels,
by release) and those that request an SGX device (the SGXPlugin's device counts). Every other
pod of the cluster is parsed once per event and forgotten.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from enclave_operator.api.kinds import LAS, SGXPLUGIN, Kind
from enclave_operator.figures.cluster import NodeView, PodView, sgx_requests

PART_OF_KEY, PART_OF_VALUE = "app.kubernetes.io/part-of", "enclave-operator"
INSTANCE = "app.kubernetes.io/instance"
Key = tuple[str, str]


class PodEntry(NamedTuple):
    release: str  # the instance label of a pod of ours, else ""
    pod: PodView


def pod_entry(body: Mapping[str, Any]) -> PodEntry | None:
    """The view of a pod worth keeping; None for every other pod."""
    labels = (body.get("metadata") or {}).get("labels") or {}
    release = str(labels.get(INSTANCE) or "") if labels.get(PART_OF_KEY) == PART_OF_VALUE else ""
    if not release and not sgx_requests(body.get("spec") or {}):
        return None
    return PodEntry(release, PodView.of(body))


def node_view(body: Mapping[str, Any]) -> NodeView:
    return NodeView.of(body)


class ClusterViews:
    """What the node and pod streams keep, indexed as the figures ask for it. ``touch(kinds,
    namespace, release)`` is told which CRs a change concerns: every CR of ``kinds``, and the
    owner of the release ``(namespace, release)`` when there is one."""

    def __init__(self, touch: Callable[[Iterable[Kind], str, str], None] | None = None) -> None:
        self.node_views: dict[str, NodeView] = {}
        self.by_release: dict[Key, dict[str, PodView]] = {}
        self.sgx: dict[Key, PodView] = {}
        self.touch = touch or (lambda kinds, namespace, release: None)
        self.listed = asyncio.Event()
        """Set once nodes and pods have been listed: figures before then would be wrong."""

    def node_changed(self, key: Key, old: NodeView | None, new: NodeView | None) -> None:
        """Any node may move every daemon's figures."""
        if new is None:
            self.node_views.pop(key[1], None)
        else:
            self.node_views[key[1]] = new
        self.touch((LAS, SGXPLUGIN), "", "")

    def pod_changed(self, key: Key, old: PodEntry | None, new: PodEntry | None) -> None:
        """A pod moves its own release's figures and, when it uses SGX, every SGXPlugin's."""
        namespace, name = key
        entries = [e for e in (old, new) if e is not None]
        releases = {(namespace, e.release) for e in entries if e.release}
        for release in releases:
            pods = self.by_release.get(release, {})
            pods.pop(name, None)
            if not pods:
                self.by_release.pop(release, None)
        self.sgx.pop(key, None)
        if new is not None and new.release:
            self.by_release.setdefault((namespace, new.release), {})[name] = new.pod
        if new is not None and new.pod.sgx:
            self.sgx[key] = new.pod
        for release in sorted(releases):
            self.touch((), *release)
        if any(e.pod.sgx for e in entries):
            self.touch((SGXPLUGIN,), "", "")

    def nodes(self) -> list[NodeView]:
        return list(self.node_views.values())

    def release_pods(self, namespace: str, release: str) -> list[PodView]:
        return list(self.by_release.get((namespace, release), {}).values())

    def sgx_pods(self) -> list[PodView]:
        return list(self.sgx.values())
