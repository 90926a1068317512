"""Registry-credential Secrets from a watch: which exist, by namespace and name.

A pass looks a CR's ``imagePullSecrets`` up here instead of reading each Secret on every pass,
and a pull secret created or deleted later re-queues the CRs that name it, like every other
input. The stream is selected server-side on the Secret type, so the cluster's other Secrets
never reach it; only names are kept, never the credentials.

The loop is controller/secretwatch.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from enclave_operator.controller.secretwatch import SecretStream
from enclave_operator.kube import Kube

DOCKER_CONFIG = "kubernetes.io/dockerconfigjson"
SELECTOR = f"type={DOCKER_CONFIG}"


class PullSecrets(SecretStream[bool]):
    def __init__(
        self, kube: Kube, changed: Callable[[str, str], None], namespaces: Sequence[str] = ()
    ) -> None:
        """``changed(namespace, name)``: a pull secret appeared or left. ``namespaces``: only
        these (the operator's namespaced mode, without cluster-wide Secret access)."""
        selectors = {"field_selector": SELECTOR}
        super().__init__(kube, "pull secret", selectors, lambda _: True, changed, namespaces)

    async def choose(
        self, spec: Mapping[str, Any], namespace: str
    ) -> tuple[str | None, tuple[str, ...]]:
        """The first of ``spec``'s imagePullSecrets that exists with the docker-config type, and
        notes for the others. From the watch, never a read per pass; before its first list,
        waits."""
        await self.listed.wait()
        chosen, ignored = None, []
        for entry in spec.get("imagePullSecrets") or []:
            name = entry.get("name", "")
            if chosen is not None:
                ignored.append(f"{name} (only the first valid one is used)")
            elif self.exists(namespace, name):
                chosen = name
            else:
                ignored.append(f"{name} (no Secret of type {DOCKER_CONFIG} by that name)")
        notes = [f"imagePullSecrets ignored: {', '.join(ignored)}"] if ignored else []
        return chosen, tuple(notes)

    def exists(self, namespace: str, name: str) -> bool:
        """Whether a Secret of the docker-config type has this name (after the first list)."""
        return (namespace, name) in self.items
