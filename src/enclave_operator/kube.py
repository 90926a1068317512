"""A thin async layer over the Kubernetes client for the few raw calls the operator makes.

The generated typed methods need one class per kind; the operator patches CRs and arbitrary
owned objects by path instead, with JSON merge patches that carry a resourceVersion so that a
write based on a stale cache fails with 409 instead of overwriting someone else's change.
"""

from __future__ import annotations

import json
from typing import Any

from kubernetes.aio import client as aclient
from kubernetes.aio import config as aconfig

from enclave_operator.api.kinds import Kind
from enclave_operator.helm.releases import ObjectRef

MERGE = "application/merge-patch+json"

_RBAC = "rbac.authorization.k8s.io/v1"

# Kinds the charts create: (apiVersion, kind) → (API path prefix, plural). Every kind a chart
# may create must be here: an object of another kind cannot be read from the caches, which
# leaves the CR's object conditions Unknown (ReadError) and the CR PENDING.
OWNED_KINDS: dict[tuple[str, str], tuple[str, str]] = {
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments"),
    ("apps/v1", "DaemonSet"): ("/apis/apps/v1", "daemonsets"),
    ("apps/v1", "StatefulSet"): ("/apis/apps/v1", "statefulsets"),
    ("v1", "Service"): ("/api/v1", "services"),
    ("v1", "PersistentVolumeClaim"): ("/api/v1", "persistentvolumeclaims"),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts"),
    (_RBAC, "ClusterRole"): (f"/apis/{_RBAC}", "clusterroles"),
    (_RBAC, "ClusterRoleBinding"): (f"/apis/{_RBAC}", "clusterrolebindings"),
    ("networking.k8s.io/v1", "Ingress"): ("/apis/networking.k8s.io/v1", "ingresses"),  # CAS's
}

ApiException = aclient.ApiException


class Kube:
    def __init__(self, api: aclient.ApiClient) -> None:
        self.api = api

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig."""
        configuration = aclient.Configuration()
        try:
            aconfig.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except aconfig.ConfigException:
            await aconfig.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, client_configuration=configuration
            )
        # like kopf's own session: no proxy or netrc lookup, which aiohttp would otherwise
        # repeat in a thread for every request
        configuration.client_session_kwargs = {"trust_env": False}
        return cls(aclient.ApiClient(configuration))

    async def close(self) -> None:
        await self.api.close()  # type: ignore[no-untyped-call]

    @staticmethod
    def custom_path(kind: Kind, namespace: str | None, name: str) -> str:
        ns = f"/namespaces/{namespace}" if kind.namespaced and namespace else ""
        return f"/apis/{kind.group}/{kind.version}{ns}/{kind.plural}/{name}"

    @staticmethod
    def object_path(ref: ObjectRef) -> str:
        prefix, plural = OWNED_KINDS[(ref.api_version, ref.kind)]
        ns = f"/namespaces/{ref.namespace}" if ref.namespace else ""
        return f"{prefix}{ns}/{plural}/{ref.name}"

    async def request(
        self, method: str, path: str, body: Any = None, content_type: str = "application/json"
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        params = await self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = await self.api.call_api(*params, _request_timeout=30)
        await response.read()  # type: ignore[no-untyped-call]
        result = self.api.response_deserialize(response, {"2XX": "object"})
        data = result.data
        if isinstance(data, dict):
            return data
        return json.loads(response.data) if response.data else {}

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body, MERGE)

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body)
