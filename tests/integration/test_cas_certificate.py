"""The CAS's certificate expiry is visible: in its status, as the CertificateValid condition and
as a metric, following its TLS Secret without any change to the CAS."""

from __future__ import annotations

import base64
import datetime as dt
import urllib.request
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from enclave_operator.api.kinds import CAS
from enclave_operator.pki import Authority
from tests.integration.crs import CRs, condition, unique
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.integration


def tls_secret(name: str, days: int) -> tuple[dict[str, Any], str]:
    """A TLS Secret as enclavectl install writes it, valid for ``days``; and its expiry."""
    authority = Authority(f"{name}-ca", dt.timedelta(days=days))
    issued = authority.issue("localhost", hosts=["localhost"])
    expiry = x509.load_pem_x509_certificate(issued.cert).not_valid_after_utc
    data = {"tls.crt": issued.cert, "tls.key": issued.key, "ca.crt": authority.cert}
    body = {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "enclave-operator"}},
        "type": "kubernetes.io/tls",
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }
    return body, expiry.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_certificate_expiry_is_visible(api_client, operator, namespace):
    crs, core = CRs(api_client), client.CoreV1Api(api_client)
    name = unique("cas")
    secret = f"cas-{name}-tls"
    body, far = tls_secret(secret, 100)
    core.create_namespaced_secret(namespace, body)
    crs.create(CAS, name, {}, namespace)
    try:
        cr = wait_for(
            lambda: crs.get(CAS, name, namespace),
            lambda c: (c.get("status") or {}).get("certificateNotAfter") == far,
            90,
            "the certificate's expiry in the status",
        )
        valid = condition(cr, "CertificateValid")
        assert (valid["status"], valid["reason"]) == ("True", "Valid")

        # renewed by hand to one that expires soon: the Secret alone moves the figures
        body, near = tls_secret(secret, 10)
        core.replace_namespaced_secret(secret, namespace, body)
        cr = wait_for(
            lambda: crs.get(CAS, name, namespace),
            lambda c: condition(c, "CertificateValid")["reason"] == "ExpiresSoon",
            90,
            "CertificateValid to say the certificate expires soon",
        )
        assert cr["status"]["certificateNotAfter"] == near
        assert secret in condition(cr, "CertificateValid")["message"]
        url = f"http://127.0.0.1:{operator.metrics_port}/metrics"
        expected = dt.datetime.strptime(near, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)

        def metric() -> float | None:
            with urllib.request.urlopen(url) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("enclave_cas_certificate_not_after_seconds{") and (
                        f'name="{name}"' in line
                    ):
                        return float(line.rsplit(" ", 1)[1])
            return None

        wait_for(metric, lambda v: v == expected.timestamp(), 30, "the expiry metric")
    finally:
        crs.delete(CAS, name, namespace)
        crs.wait_gone(CAS, name, namespace)
