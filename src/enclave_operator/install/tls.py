"""The CAS client API's TLS certificate and the operator's client certificate for it: their
names, and the Secrets that carry them."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from enclave_operator.api.kinds import CAS
from enclave_operator.charts.values import client_secrets, release_name
from enclave_operator.pki import LAS_CN, OPERATOR_CLIENT_SECRET, OPERATOR_CN, Authority

VALIDITY = dt.timedelta(days=365)
_DNS = re.compile(
    r"^(\*\.)?(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$"
)
MANAGED_BY = {"app.kubernetes.io/managed-by": "enclavectl"}


def cas_service(cas_name: str) -> str:
    """The CAS Service is named after its release (the CAS chart names it so)."""
    return release_name(CAS, cas_name)


def secret_name(cas_name: str) -> str:
    """Same name as the chart's ``enclave-operator.casTLSSecret``."""
    return f"{cas_service(cas_name)}-tls"


def invalid_domain(domain: str) -> str | None:
    """Why ``domain`` cannot be a subject alternative name, or None when it can."""
    try:
        ipaddress.ip_address(domain)
        return None
    except ValueError:
        pass
    if _DNS.match(domain.lower()):
        return None
    return f"{domain!r} is neither a DNS name nor an IP address"


def san_names(domains: Sequence[str], cas_name: str, namespace: str) -> list[str]:
    """The user's domains first (the first is also the CommonName), then localhost and every
    name the CAS Service has inside the cluster; each name once, in that order."""
    service = cas_service(cas_name)
    names = [
        *(d.lower() for d in domains),
        "localhost",
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]
    return list(dict.fromkeys(names))


CLIENT_SECRET = OPERATOR_CLIENT_SECRET


def tls_secret(domains: Sequence[str], cas_name: str, namespace: str) -> dict[str, Any]:
    """The CAS's serving certificate alone (see ``tls_secrets``)."""
    return tls_secrets(domains, cas_name, namespace)[0]


def ca_secret_name(cas_name: str) -> str:
    """The CA that signed the CAS's certificate, key included: the operator renews with it."""
    return f"{cas_service(cas_name)}-ca"


def secret_names(cas_name: str) -> list[str]:
    """The Secrets ``tls_secrets`` makes, in its order: the CAS's, its CA, then the client
    certificates the operator renews from that CA (the operator's, the LAS's)."""
    clients = [name for name, _ in client_secrets(cas_name)]
    return [secret_name(cas_name), ca_secret_name(cas_name), *clients]


def tls_secrets(domains: Sequence[str], cas_name: str, namespace: str) -> list[dict[str, Any]]:
    """A new CA, a serving certificate for the CAS and a client certificate for the operator,
    as ``kubernetes.io/tls`` Secrets that carry the CA: the CAS verifies the operator's
    certificate with it, the operator verifies the CAS's. The CA itself, key included, is kept
    beside the CAS (whose own key is as secret): the operator renews the certificates from it
    before they expire, and clients keep trusting the same CA. The last is the client
    certificate of the LAS of the same name, so that CAS records its enrolment as
    authenticated. In the order of ``secret_names``.
    """
    names = san_names(domains, cas_name, namespace)
    authority = Authority(f"{cas_service(cas_name)}-ca", VALIDITY * 10)
    serving = authority.issue(names[0], hosts=names, validity=VALIDITY)
    client = authority.issue(OPERATOR_CN, client=True, validity=VALIDITY)
    las = authority.issue(LAS_CN, client=True, validity=VALIDITY)
    ca = authority.cert
    pairs = [(serving.cert, serving.key), (ca, authority.key)]
    pairs += [(client.cert, client.key), (las.cert, las.key)]
    return [
        _secret(name, namespace, cert, key, ca)
        for name, (cert, key) in zip(secret_names(cas_name), pairs, strict=True)
    ]


def _secret(name: str, namespace: str, cert: bytes, key: bytes, ca: bytes) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**MANAGED_BY, "app.kubernetes.io/part-of": "enclave-operator"},
        },
        "data": {"tls.crt": b64(cert), "tls.key": b64(key), "ca.crt": b64(ca)},
    }
