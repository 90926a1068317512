"""The node and pod streams that feed the figures, in place of kopf watches of every node and
pod (see controller/viewstream.py for why). Nodes are cluster-scoped and always streamed whole;
pods only in the watched namespaces in namespaced mode."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence

from enclave_operator.api.kinds import Kind
from enclave_operator.controller.caches import Caches, CRKey
from enclave_operator.controller.views import node_view, pod_entry
from enclave_operator.controller.viewstream import ViewStream
from enclave_operator.kube import Kube


class ClusterWatch:
    def __init__(
        self,
        kube: Kube,
        caches: Caches,
        enqueue: Callable[[CRKey], None],
        namespaces: Sequence[str] = (),
    ) -> None:
        """``enqueue``: best debounced, as a burst of node or pod events moves figures only."""
        views = self.views = caches.views

        def touch(kinds: Iterable[Kind], namespace: str, release: str) -> None:
            for kind in kinds:
                for key in caches.keys(kind):
                    enqueue(key)
            if namespace and release and (owner := caches.owner_of_release(namespace, release)):
                enqueue(owner)

        views.touch = touch
        self.nodes = ViewStream(kube, "/api/v1/nodes", node_view, views.node_changed)
        self.pods = ViewStream(kube, "/api/v1/pods", pod_entry, views.pod_changed, namespaces)

    async def run(self) -> None:
        async def listed() -> None:
            await self.nodes.listed.wait()
            await self.pods.listed.wait()
            self.views.listed.set()

        await asyncio.gather(self.nodes.run(), self.pods.run(), listed())
