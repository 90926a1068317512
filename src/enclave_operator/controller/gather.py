"""A CR's status figures from what the caches hold: its pods, nodes, DaemonSet, certificate
expiries and the versions its services report. No I/O; the worker calls it on every pass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave_operator.api.kinds import CAS, LAS
from enclave_operator.charts.values import client_secrets
from enclave_operator.controller.caches import Caches, CRKey
from enclave_operator.controller.certificates import Certificates
from enclave_operator.controller.versions import ServiceVersions
from enclave_operator.figures.certificate import (
    certificate_figures,
    with_certificate,
    with_client,
)
from enclave_operator.figures.cluster import unix
from enclave_operator.figures.compute import Figures, cas_figures, las_figures, sgx_figures
from enclave_operator.helm.releases import ObjectRef


def gather(
    caches: Caches,
    certificates: Certificates,
    versions: ServiceVersions,
    key: CRKey,
    spec: Mapping[str, Any],
    namespace: str,
    release: str,
    now: float,
) -> Figures:
    pods = caches.release_pods(namespace, release)
    if key.kind is CAS:
        port = int((spec.get("service") or {}).get("clientPort") or 8081)
        secret = f"{release}-tls"  # the CAS chart mounts it (enclavectl install writes it)
        ca = f"{release}-ca"
        ca_expiry = certificates.expiry(namespace, ca)
        cert = certificate_figures(secret, certificates.expiry(namespace, secret), now, ca_expiry)
        # client certificates this CAS's CA issued (enclavectl install): the operator's, and
        # that of the LAS of the same name
        for client, who in client_secrets(key.name):
            if certificates.same_ca(namespace, client, ca):
                expiry = certificates.expiry(namespace, client)
                cert = with_client(cert, certificate_figures(client, expiry, now, ca_expiry), who)
        return with_certificate(
            cas_figures(pods, versions.cas(key, release, namespace, port, pods)), cert
        )
    # the charts name the DaemonSet after the release; without one, pods are still to come
    daemonset = caches.lookup(ObjectRef("apps/v1", "DaemonSet", namespace, release))
    since = unix(daemonset["metadata"].get("creationTimestamp")) if daemonset else now
    nodes = caches.nodes()
    if key.kind is LAS:
        port = int(spec.get("hostPort") or 18766)
        reported = versions.las(key, port, pods)
        return las_figures(spec, nodes, pods, now, since, reported)
    return sgx_figures(spec, nodes, pods, caches.sgx_pods(), now, since)
