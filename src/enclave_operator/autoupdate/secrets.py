"""The pull secret autoUpdate reads the registry with: the one the pods get."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from enclave_operator.autoupdate.reference import CredentialsError, credentials, dockerconfig_of
from enclave_operator.kube import ApiException, Kube

DOCKERCONFIG = "kubernetes.io/dockerconfigjson"


class PullSecret(NamedTuple):
    name: str | None  # the Secret used, None without one
    auth: tuple[str, str] | None


async def pull_secret(kube: Kube, spec: Mapping[str, Any], namespace: str, host: str) -> PullSecret:
    """The first imagePullSecret that exists with the docker-config type (as the service
    controller chooses it for the pods), and its credentials for ``host``."""
    for entry in spec.get("imagePullSecrets") or []:
        name = str(entry.get("name", ""))
        try:
            secret = await kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except ApiException as e:
            if e.status == 404:
                continue
            if e.status == 403:  # namespaced mode: the operator reads no Secret there
                raise CredentialsError(
                    f"Secret {namespace}/{name}: the operator may not read it"
                ) from e
            raise
        if secret.get("type") != DOCKERCONFIG:
            continue
        try:
            return PullSecret(name, credentials(dockerconfig_of(secret), host))
        except CredentialsError as e:
            raise CredentialsError(f"Secret {namespace}/{name}: {e}") from e
    return PullSecret(None, None)
