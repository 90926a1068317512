"""A CR's status figures from what the caches hold: its pods, nodes, DaemonSet, certificate
expiries and the versions its services report. No I/O; the worker calls it on every pass."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave_operator.api.kinds import CAS, LAS
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
from enclave_operator.pki import OPERATOR_CLIENT_SECRET


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
        # the operator's client certificate, when this CAS's CA issued it (enclavectl install)
        if certificates.same_ca(namespace, OPERATOR_CLIENT_SECRET, ca):
            expiry = certificates.expiry(namespace, OPERATOR_CLIENT_SECRET)
            client = certificate_figures(OPERATOR_CLIENT_SECRET, expiry, now, ca_expiry)
            cert = with_client(cert, client)
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
