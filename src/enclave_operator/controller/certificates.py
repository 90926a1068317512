"""When each CAS's TLS certificate expires, from a watch of the TLS Secrets our installations
make (``app.kubernetes.io/part-of=enclave-operator``, type ``kubernetes.io/tls``, both selected
server-side): only the expiry and a digest of the CA the Secret names are kept, never a key.
The digest tells whether a client certificate (the operator's, a LAS's) comes from a CAS's CA.

A pass reads it here to report the certificate's expiry (status, metric, condition); a Secret
that changes re-queues the CAS that serves it. The loop is controller/secretwatch.py's.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography import x509

from enclave_operator.controller.secretwatch import SecretStream
from enclave_operator.kube import Kube

log = logging.getLogger("enclave_operator.controller")
FIELDS = "type=kubernetes.io/tls"
LABELS = "app.kubernetes.io/part-of=enclave-operator"
UNREADABLE = -1.0


def ca_digest(secret: Mapping[str, Any]) -> str:
    """SHA-256 of the Secret's ca.crt as stored ("" without one)."""
    stored = (secret.get("data") or {}).get("ca.crt") or ""
    return hashlib.sha256(stored.encode()).hexdigest() if stored else ""


def not_after(secret: Mapping[str, Any]) -> float:
    """The expiry of the Secret's tls.crt, as unix time; UNREADABLE when it cannot be read."""
    try:
        pem = base64.b64decode((secret.get("data") or {}).get("tls.crt") or "")
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
    except ValueError:
        return UNREADABLE


def view(secret: Mapping[str, Any]) -> tuple[float, str]:
    return not_after(secret), ca_digest(secret)


class Certificates(SecretStream[tuple[float, str]]):
    """Expiry times (unix) of the selected TLS Secrets, by namespace and name."""

    def __init__(
        self, kube: Kube, changed: Callable[[str, str], None], namespaces: Sequence[str] = ()
    ) -> None:
        """``changed(namespace, name)``: a TLS Secret came, changed or left. ``namespaces``:
        only these (the namespaced mode), else every namespace."""
        selectors = {"field_selector": FIELDS, "label_selector": LABELS}
        super().__init__(kube, "TLS Secret", selectors, view, changed, namespaces)

    def expiry(self, namespace: str, name: str) -> float | None:
        """Unix time the certificate expires; None: no such Secret (yet); UNREADABLE."""
        kept = self.items.get((namespace, name))
        return kept[0] if kept else None

    def same_ca(self, namespace: str, name: str, other: str) -> bool:
        """Both Secrets exist and carry the same ca.crt."""
        one, two = self.items.get((namespace, name)), self.items.get((namespace, other))
        return bool(one and two and one[1] and one[1] == two[1])
