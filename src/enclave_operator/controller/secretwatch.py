"""A watch of Secrets selected server-side, kept by namespace and name, beside kopf's.

kopf watches Secrets already, but one stream per resource, selected on Helm's release records
(``owner=helm``); a stream with selectors of its own needs its own loop: controller/viewstream.py's
(a list in pages, the watch from its version, a 410 or any failure lists again and replaces,
one loop per namespace in namespaced mode, so that no cluster-wide access is needed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from enclave_operator.controller.viewstream import ViewStream
from enclave_operator.kube import Kube

T = TypeVar("T")
QUERY = {"field_selector": "fieldSelector", "label_selector": "labelSelector"}


class SecretStream(ViewStream[T]):
    """What ``keep(secret)`` makes of each selected Secret (its plain JSON), by key; every key
    whose value comes, changes or goes is handed to ``changed(namespace, name)``."""

    def __init__(
        self,
        kube: Kube,
        what: str,
        selectors: Mapping[str, str],
        keep: Callable[[Mapping[str, Any]], T],
        changed: Callable[[str, str], None],
        namespaces: Sequence[str] = (),
    ) -> None:
        query = {QUERY[k]: v for k, v in selectors.items()}
        super().__init__(
            kube,
            "/api/v1/secrets",
            keep,
            lambda key, old, new: changed(*key),
            namespaces,
            query,
        )
        self.what = what
