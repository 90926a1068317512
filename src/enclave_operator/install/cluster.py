"""enclavectl's connection to the cluster: raw API paths, and failures as one clear line.

Raw paths with plain dicts, as the operator's own ``kube`` module does: the few calls made here
span a dozen kinds, and a typed class per kind would add nothing but conversions.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config

from enclave_operator.api.kinds import Kind
from enclave_operator.install.plugins import NodeInfo

TIMEOUT = 15


class CLIError(Exception):
    """A failure the user must act on; the message is one line and says what to do."""


def kubeconfig_path(explicit: str | None) -> Path:
    """--kubeconfig, else $KUBECONFIG (its first file), else ~/.kube/config."""
    chosen = explicit or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    path = Path(chosen).expanduser() if chosen else Path.home() / ".kube" / "config"
    if not path.is_file():
        raise CLIError(
            f"no kubeconfig at {path}: set KUBECONFIG or pass --kubeconfig "
            "(for the dev cluster: export KUBECONFIG=$(enclavectl dev-cluster kubeconfig))"
        )
    return path


def _short(reason: object) -> str:
    text = str(reason)
    if m := re.search(r"\[Errno -?\d+\] ([^')\]]+)", text):
        return m.group(1).strip().rstrip(".")
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1][:200]


def _api_message(e: client.ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except ValueError:
        return str(e.reason)


class Cluster:
    """One API server, reached with one kubeconfig; every call fails as a CLIError."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        try:
            self.api: client.ApiClient = config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
        except Exception as e:  # a broken file: ConfigException, YAML or key errors
            raise CLIError(f"cannot use kubeconfig {kubeconfig}: {_short(e)}") from None
        self.server = str(self.api.configuration.host)
        self.api.configuration.retries = 1

    @classmethod
    def connect(cls, kubeconfig: str | None) -> Cluster:
        """Connected and authenticated, or a CLIError naming the server and the reason."""
        cluster = cls(kubeconfig_path(kubeconfig))
        cluster.get("/version")
        return cluster

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        try:
            yield
        except client.ApiException as e:
            if e.status == 401:
                raise CLIError(
                    f"the cluster at {self.server} rejected the credentials in {self.kubeconfig}"
                    " (401 Unauthorized)"
                ) from None
            if e.status == 403:
                raise CLIError(f"missing permission: {_api_message(e)}") from None
            raise
        except (urllib3.exceptions.HTTPError, OSError) as e:
            reason = e.reason if isinstance(e, urllib3.exceptions.MaxRetryError) else e
            raise CLIError(f"cannot reach the cluster at {self.server}: {_short(reason)}") from None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, str]] | None = None,
    ) -> dict[str, Any]:
        """The response body; ApiException for statuses other than 401/403, which the caller
        may expect (404, 409)."""
        with self.errors():
            params = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params={"Accept": "application/json", "Content-Type": content_type},
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(*params, _request_timeout=TIMEOUT)
            response.read()  # type: ignore[no-untyped-call]
            data = self.api.response_deserialize(response, {"2XX": "object"}).data
        return data if isinstance(data, dict) else {}

    def get(self, path: str) -> dict[str, Any]:
        return self.request("GET", path)

    def find(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.get(path)
        except client.ApiException as e:
            if e.status == 404:
                return None
            raise

    def delete(self, path: str) -> bool:
        """True if something was deleted (or is being deleted); absent is fine."""
        try:
            self.request("DELETE", path, {"propagationPolicy": "Background"})
            return True
        except client.ApiException as e:
            if e.status == 404:
                return False
            raise

    def merge_patch(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PATCH", path, body, "application/merge-patch+json")

    def wait(self, done: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
        """Poll ``done`` until it holds or ``timeout`` passes; False on timeout."""
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                return False
            time.sleep(every)
        return True

    # --- the few kinds enclavectl reads ---

    def list_crs(self, kind: Kind) -> list[dict[str, Any]]:
        """Every object of ``kind`` in every namespace; CLIError when its CRD is missing."""
        try:
            items = self.get(f"/apis/{kind.group}/{kind.version}/{kind.plural}").get("items")
        except client.ApiException as e:
            if e.status == 404:
                raise CLIError(
                    f"enclave-operator is not installed: there is no {kind.crd_name} CRD"
                    " (`enclavectl install` installs it)"
                ) from None
            raise
        return list(items or [])

    def nodes(self) -> list[NodeInfo]:
        items = self.get("/api/v1/nodes").get("items") or []
        return [
            NodeInfo(
                n["metadata"]["name"],
                dict((n.get("status") or {}).get("capacity") or {}),
                dict(n["metadata"].get("labels") or {}),
            )
            for n in items
        ]

    def missing(self, checks: list[tuple[str, str, str, str | None]]) -> list[str]:
        """Which of (verb, group, resource, namespace) the caller may not do, as 'verb res'."""
        denied = []
        for verb, group, resource, namespace in checks:
            attrs = {"verb": verb, "group": group, "resource": resource}
            if namespace:
                attrs["namespace"] = namespace
            review = self.request(
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                {"spec": {"resourceAttributes": attrs}},
            )
            if not (review.get("status") or {}).get("allowed"):
                qualified = f"{resource}.{group}" if group else resource
                denied.append(f"{verb} {qualified}")
        return denied
