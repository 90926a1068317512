"""Which CRs a Secret outside the releases concerns: a pull secret, a CAS's TLS Secret. Such a
Secret coming, changing or going re-queues them, so that it is seen without another event."""

from __future__ import annotations

from collections.abc import Iterator

from enclave_operator.api.kinds import CAS
from enclave_operator.charts.values import client_secrets, release_name, release_namespace
from enclave_operator.controller.caches import SERVICE_KINDS, Caches, CRKey


def naming_pull_secret(
    caches: Caches, operator_namespace: str, namespace: str, name: str
) -> Iterator[CRKey]:
    """The CRs whose imagePullSecrets name this Secret of their release's namespace."""
    if not caches.ready:
        return  # nothing reconciled yet: the first passes read the list
    for kind in SERVICE_KINDS:
        for key in caches.keys(kind):
            cr = caches.cr(key) or {}
            names = {e.get("name") for e in (cr.get("spec") or {}).get("imagePullSecrets") or []}
            if name in names and release_namespace(kind, cr, operator_namespace) == namespace:
                yield key


def serving_certificate(caches: Caches, namespace: str, name: str) -> Iterator[CRKey]:
    """The CAS whose TLS Secret (cas-<name>-tls, which its chart mounts), CA (cas-<name>-ca)
    or client certificates (the operator's, its LAS's: ``client_secrets``) this is."""
    if not caches.ready:
        return
    for key in caches.keys(CAS):
        if key.namespace != namespace:
            continue
        release = release_name(CAS, key.name)
        clients = [client for client, _ in client_secrets(key.name)]
        if name in (f"{release}-tls", f"{release}-ca", *clients):
            yield key
