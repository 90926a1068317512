"""A thin async client for the few raw calls the operator makes, on kopf's own credentials.

The operator patches CRs and arbitrary owned objects by path, with JSON merge patches that
carry a resourceVersion so that a write based on a stale cache fails with 409 instead of
overwriting someone else's change; it needs no typed models. So this is an aiohttp session
built from the same login kopf's watches use (kubeconfig, or the pod's service account), not
the generated client library: importing that loads every model class, about 20 MiB in each
process (the operator and its webhook child).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import kopf

from enclave_operator.api.kinds import Kind
from enclave_operator.helm.releases import ObjectRef

MERGE = "application/merge-patch+json"
METADATA_ONLY = ",".join(
    f"application/json;as={kind};g=meta.k8s.io;v=v1"
    for kind in ("PartialObjectMetadataList", "PartialObjectMetadata")
)
TIMEOUT = aiohttp.ClientTimeout(total=30)
# Connections for requests at once; more wait for a free one. Each TLS connection costs the
# API server a handshake and this process a 256 KiB read buffer: with no bound, a restart
# beside a hundred CAS opened over a hundred of them for one burst of reads. Watches hold
# their connection for as long as they run, so they have a pool of their own, unbounded.
REQUEST_CONNECTIONS = 16

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


class ApiException(Exception):
    """A request the API server refused: its HTTP status, reason phrase and Status message."""

    def __init__(self, status: int = 0, reason: str | None = None, body: str = "") -> None:
        self.status, self.reason, self.body = status, reason, body
        super().__init__(status, reason)

    @classmethod
    async def of(cls, response: aiohttp.ClientResponse) -> ApiException:
        return cls(response.status, response.reason, await response.text(errors="replace"))

    def __str__(self) -> str:
        try:
            message = json.loads(self.body).get("message")
        except (ValueError, AttributeError):
            message = self.body[:300]
        return f"({self.status}) {self.reason}" + (f": {message}" if message else "")


def login() -> kopf.ConnectionInfo:
    """The pod's service account, else the kubeconfig ($KUBECONFIG or ~/.kube/config)."""
    settings = kopf.OperatorSettings()
    info = kopf.login_with_service_account(settings=settings) or kopf.login_with_kubeconfig(
        settings=settings
    )
    if info is None:
        raise kopf.LoginError("no service account token and no kubeconfig")
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT")
    if host and port and info.server == "https://kubernetes.default.svc":
        # as client-go's in-cluster config: the service's address, with no DNS lookup
        host = f"[{host}]" if ":" in host else host
        info = dataclasses.replace(info, server=f"https://{host}:{port}")
    return info


class Kube:
    def __init__(self, credentials: Callable[[], kopf.ConnectionInfo] = login) -> None:
        self._credentials = credentials
        info = credentials()
        self.server = info.server.rstrip("/")
        context = info.as_ssl_context()
        self._requests, self._watches = (
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=limit, ssl=context),
                headers={**info.as_http_headers(), "User-Agent": "enclave-operator"},
                trust_env=False,  # as kopf's session: no proxy or netrc lookup per request
            )
            for limit in (REQUEST_CONNECTIONS, 0)
        )
        self._refreshing = asyncio.Lock()

    @classmethod
    async def connect(cls, kubeconfig: str | None = None) -> Kube:
        """In-cluster credentials when running in a pod, else the kubeconfig."""
        if kubeconfig:  # kopf's login reads it from there, for this client and kopf's watches
            os.environ["KUBECONFIG"] = kubeconfig
        return cls()

    async def close(self) -> None:
        await self._requests.close()
        await self._watches.close()

    async def _refresh(self, sent: str | None) -> None:
        """After a 401: read the credentials again (a service account token is rotated on
        disk), unless a concurrent request did so already."""
        async with self._refreshing:
            if self._requests.headers.get("Authorization") == sent:
                info = await asyncio.to_thread(self._credentials)
                for session in (self._requests, self._watches):
                    session.headers.update(info.as_http_headers())

    @contextlib.asynccontextmanager
    async def _send(
        self,
        method: str,
        path: str,
        timeout: aiohttp.ClientTimeout,
        session: aiohttp.ClientSession | None = None,
        **kw: Any,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response with a 2xx status; any other is raised as ApiException."""
        session = session or self._requests
        for attempt in (1, 2):
            sent = session.headers.get("Authorization")
            async with session.request(
                method, self.server + path, timeout=timeout, **kw
            ) as response:
                if response.status == 401 and attempt == 1:
                    await self._refresh(sent)
                    continue
                if response.status >= 300:
                    raise await ApiException.of(response)
                yield response
                return

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        data = None if body is None else json.dumps(body)
        headers = {"Accept": accept, "Content-Type": content_type}
        async with self._send(method, path, TIMEOUT, data=data, headers=headers) as response:
            raw = await response.read()
        result = json.loads(raw) if raw else {}
        return result if isinstance(result, dict) else {}

    @contextlib.asynccontextmanager
    async def stream(self, path: str, read_timeout: float) -> AsyncIterator[aiohttp.StreamReader]:
        """A watch: the response body to read line by line; a gap of ``read_timeout`` seconds
        with no line ends it."""
        timeout = aiohttp.ClientTimeout(total=None, connect=30, sock_read=read_timeout)
        headers = {"Accept": "application/json"}
        async with self._send("GET", path, timeout, self._watches, headers=headers) as response:
            yield response.content

    async def get(self, path: str) -> dict[str, Any]:
        return await self.request("GET", path)

    async def metadata(self, path: str) -> dict[str, Any]:
        """An object or a list with metadata only (PartialObjectMetadata): a list of Helm's
        release records without their payloads, say."""
        return await self.request("GET", path, accept=METADATA_ONLY)

    async def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("PATCH", path, body, MERGE)

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body)

    @staticmethod
    def custom_path(kind: Kind, namespace: str | None, name: str) -> str:
        ns = f"/namespaces/{namespace}" if kind.namespaced and namespace else ""
        return f"/apis/{kind.group}/{kind.version}{ns}/{kind.plural}/{name}"

    @staticmethod
    def object_path(ref: ObjectRef) -> str:
        prefix, plural = OWNED_KINDS[(ref.api_version, ref.kind)]
        ns = f"/namespaces/{ref.namespace}" if ref.namespace else ""
        return f"{prefix}{ns}/{plural}/{ref.name}"
