"""Creating and reading the project's custom resources in tests."""

from __future__ import annotations

import uuid
from typing import Any

from kubernetes import client

from enclave_operator.api.kinds import Kind
from tests.integration.waiting import wait_for


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


class CRs:
    def __init__(self, api_client: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(api_client)

    def create(self, kind: Kind, name: str, spec: dict[str, Any], ns: str | None = None) -> Any:
        body = {
            "apiVersion": kind.api_version,
            "kind": kind.kind,
            "metadata": {"name": name},
            "spec": spec,
        }
        if kind.namespaced:
            return self.api.create_namespaced_custom_object(
                kind.group, kind.version, ns or "", kind.plural, body
            )
        return self.api.create_cluster_custom_object(kind.group, kind.version, kind.plural, body)

    def get(self, kind: Kind, name: str, ns: str | None = None) -> Any:
        try:
            if kind.namespaced:
                return self.api.get_namespaced_custom_object(
                    kind.group, kind.version, ns or "", kind.plural, name
                )
            return self.api.get_cluster_custom_object(kind.group, kind.version, kind.plural, name)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def patch(self, kind: Kind, name: str, body: Any, ns: str | None = None) -> Any:
        if kind.namespaced:
            return self.api.patch_namespaced_custom_object(
                kind.group,
                kind.version,
                ns or "",
                kind.plural,
                name,
                body,
                _content_type="application/merge-patch+json",
            )
        return self.api.patch_cluster_custom_object(
            kind.group,
            kind.version,
            kind.plural,
            name,
            body,
            _content_type="application/merge-patch+json",
        )

    def delete(self, kind: Kind, name: str, ns: str | None = None) -> None:
        try:
            if kind.namespaced:
                self.api.delete_namespaced_custom_object(
                    kind.group, kind.version, ns or "", kind.plural, name
                )
            else:
                self.api.delete_cluster_custom_object(kind.group, kind.version, kind.plural, name)
        except client.ApiException as e:
            if e.status != 404:
                raise

    def wait_state(
        self, kind: Kind, name: str, state: str, ns: str | None = None, timeout: float = 90
    ) -> Any:
        return wait_for(
            lambda: self.get(kind, name, ns),
            lambda cr: cr is not None and (cr.get("status") or {}).get("state") == state,
            timeout=timeout,
            what=f"{kind.kind} {name} to be {state}",
        )

    def wait_gone(self, kind: Kind, name: str, ns: str | None = None, timeout: float = 90) -> None:
        wait_for(
            lambda: self.get(kind, name, ns),
            lambda cr: cr is None,
            timeout=timeout,
            what=f"{kind.kind} {name} to be gone",
        )


def condition(cr: Any, type_: str) -> dict[str, Any]:
    return next(c for c in cr["status"]["conditions"] if c["type"] == type_)
