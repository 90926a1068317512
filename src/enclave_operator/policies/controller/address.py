"""Where a policy goes: ``spec.casAddress`` → the URL to call and the CA to trust.

- ``https://host[:port]`` or ``host[:port]`` (port 8081 by default) is called as written.
- When the host is the Service of a CAS resource — ``cas-<name>``, ``cas-<name>.<ns>``,
  ``cas-<name>.<ns>.svc`` or ``cas-<name>.<ns>.svc.cluster.local``, the namespace defaulting
  to the policy's — and that CAS exists, the operator calls its fully qualified Service name
  (so a short name works from the operator's own namespace too) and trusts the CA in that
  CAS's TLS Secret ``cas-<name>-tls``.
- Otherwise it trusts the CA in its own client Secret (``enclave-operator-cas-client``, which
  ``enclavectl install`` writes with the CAS certificate's CA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from enclave_operator.policies.client import base_url

SERVICE_PREFIX = "cas-"


@dataclass(frozen=True)
class Target:
    url: str
    cas: tuple[str, str] | None = None
    """(namespace, name) of the CAS resource the address names, if any."""


def resolve(address: str, namespace: str, cas_exists: Callable[[str, str], bool]) -> Target:
    """Raises client.AddressError for an address that is not https://host[:port]."""
    url = base_url(address)
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    labels = host.split(".")
    suffixes: tuple[list[str], ...] = ([], ["svc"], ["svc", "cluster", "local"])
    if labels[0].startswith(SERVICE_PREFIX) and (
        len(labels) == 1 or (len(labels) >= 2 and labels[2:] in suffixes)
    ):
        ns = labels[1] if len(labels) >= 2 else namespace
        name = labels[0][len(SERVICE_PREFIX) :]
        if name and cas_exists(ns, name):
            return Target(f"https://{labels[0]}.{ns}.svc:{port}", (ns, name))
    return Target(url)
