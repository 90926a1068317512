"""The CAS's certificate expiry is visible (its status, the CertificateValid condition, a
metric), following its TLS Secret without any change to the CAS; and the operator renews it,
and its own client certificate for it, from the CA kept beside it. Named to run after
test_crds, whose status tests need the session's operator not running yet."""

from __future__ import annotations

import base64
import datetime as dt
import urllib.request
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from enclave_operator.api.kinds import CAS
from enclave_operator.pki import LAS_CN, OPERATOR_CLIENT_SECRET, OPERATOR_CN, Authority
from tests.integration.crs import CRs, condition, unique
from tests.integration.waiting import wait_for

pytestmark = pytest.mark.integration


def secret_body(name: str, cert: bytes, key: bytes, ca: bytes) -> dict[str, Any]:
    """A TLS Secret as enclavectl install writes one."""
    data = {"tls.crt": cert, "tls.key": key, "ca.crt": ca}
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "enclave-operator"}},
        "type": "kubernetes.io/tls",
        "data": {k: base64.b64encode(v).decode() for k, v in data.items()},
    }


def tls_secret(name: str, days: int) -> tuple[dict[str, Any], str]:
    """A TLS Secret as enclavectl install writes it, valid for ``days``; and its expiry."""
    authority = Authority(f"{name}-ca", dt.timedelta(days=days))
    issued = authority.issue("localhost", hosts=["localhost"])
    expiry = x509.load_pem_x509_certificate(issued.cert).not_valid_after_utc
    body = secret_body(name, issued.cert, issued.key, authority.cert)
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


def test_the_operator_renews_a_certificate_from_the_ca_kept_beside_it(
    api_client, operator, namespace
):
    """As enclavectl install leaves it: cas-<name>-tls signed by the CA in cas-<name>-ca. A
    certificate 10 days from expiry is issued again by that CA, with the same names."""
    crs, core = CRs(api_client), client.CoreV1Api(api_client)
    name = unique("cas")
    authority = Authority("cas-ca", dt.timedelta(days=3650))
    hosts = ["cas.example.com", "localhost", f"cas-{name}.{namespace}.svc"]
    old = authority.issue(hosts[0], hosts=hosts, validity=dt.timedelta(days=10))

    def secret(secret_name: str, cert: bytes, key: bytes) -> dict[str, Any]:
        return secret_body(secret_name, cert, key, authority.cert)

    core.create_namespaced_secret(
        namespace, secret(f"cas-{name}-ca", authority.cert, authority.key)
    )
    core.create_namespaced_secret(namespace, secret(f"cas-{name}-tls", old.cert, old.key))
    crs.create(CAS, name, {}, namespace)
    try:

        def served() -> x509.Certificate:
            body = core.read_namespaced_secret(f"cas-{name}-tls", namespace)
            return x509.load_pem_x509_certificate(base64.b64decode(body.data["tls.crt"]))

        renewed = wait_for(
            served,
            lambda c: c.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300),
            90,
            "the certificate to be renewed",
        )
        before = x509.load_pem_x509_certificate(old.cert)
        san = x509.SubjectAlternativeName
        assert (
            renewed.extensions.get_extension_for_class(san).value
            == before.extensions.get_extension_for_class(san).value
        )
        ca = x509.load_pem_x509_certificate(authority.cert)
        renewed.verify_directly_issued_by(ca)  # clients keep the CA they have
        cr = wait_for(
            lambda: crs.get(CAS, name, namespace),
            lambda c: condition(c, "CertificateValid")["reason"] == "Valid",
            60,
            "CertificateValid to be True again",
        )
        assert cr["status"]["certificateNotAfter"] == renewed.not_valid_after_utc.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    finally:
        crs.delete(CAS, name, namespace)
        crs.wait_gone(CAS, name, namespace)


def test_the_operator_renews_its_client_certificate_from_the_cas_ca(
    api_client, operator, namespace
):
    """enclavectl install issues the operator's client certificate for a CAS from that CAS's
    CA. Due, it is issued again by that CA, still a client certificate; the CAS's own valid
    certificate is left as it is. One from another CA is not the CAS's business."""
    crs, core = CRs(api_client), client.CoreV1Api(api_client)
    name = unique("cas")
    authority = Authority("cas-ca", dt.timedelta(days=3650))
    serving = authority.issue("localhost", hosts=["localhost"], validity=dt.timedelta(days=200))

    secret = secret_body

    def read(secret_name: str) -> x509.Certificate:
        body = core.read_namespaced_secret(secret_name, namespace)
        return x509.load_pem_x509_certificate(base64.b64decode(body.data["tls.crt"]))

    core.create_namespaced_secret(
        namespace, secret(f"cas-{name}-ca", authority.cert, authority.key, authority.cert)
    )
    core.create_namespaced_secret(
        namespace, secret(f"cas-{name}-tls", serving.cert, serving.key, authority.cert)
    )
    foreign = Authority("another-ca", dt.timedelta(days=3650))
    theirs = foreign.issue(OPERATOR_CN, client=True, validity=dt.timedelta(days=10))
    core.create_namespaced_secret(
        namespace, secret(OPERATOR_CLIENT_SECRET, theirs.cert, theirs.key, foreign.cert)
    )
    crs.create(CAS, name, {}, namespace)
    try:
        cr = wait_for(
            lambda: crs.get(CAS, name, namespace),
            lambda c: any(
                x["type"] == "CertificateValid"
                for x in (c.get("status") or {}).get("conditions", [])
            ),
            90,
            "CertificateValid",
        )
        assert condition(cr, "CertificateValid")["reason"] == "Valid"  # not this CA's
        assert (
            read(OPERATOR_CLIENT_SECRET).serial_number
            == x509.load_pem_x509_certificate(theirs.cert).serial_number
        )

        ours = authority.issue(OPERATOR_CN, client=True, validity=dt.timedelta(days=10))
        core.replace_namespaced_secret(
            OPERATOR_CLIENT_SECRET,
            namespace,
            secret(OPERATOR_CLIENT_SECRET, ours.cert, ours.key, authority.cert),
        )
        renewed = wait_for(
            lambda: read(OPERATOR_CLIENT_SECRET),
            lambda c: c.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300),
            90,
            "the client certificate to be renewed",
        )
        renewed.verify_directly_issued_by(x509.load_pem_x509_certificate(authority.cert))
        usage = renewed.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
        cn = renewed.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
        assert cn == OPERATOR_CN
        same = x509.load_pem_x509_certificate(serving.cert).serial_number
        assert read(f"cas-{name}-tls").serial_number == same  # not due: left alone
        wait_for(
            lambda: crs.get(CAS, name, namespace),
            lambda c: condition(c, "CertificateValid")["reason"] == "Valid",
            60,
            "CertificateValid to be True again",
        )

        # once all is quiet, the LAS's Secret alone: its own event must bring the renewal
        las = authority.issue(LAS_CN, client=True, validity=dt.timedelta(days=5))
        las_secret = f"las-{name}-client"  # the LAS of the same name mounts it
        core.create_namespaced_secret(
            namespace, secret(las_secret, las.cert, las.key, authority.cert)
        )
        las_renewed = wait_for(
            lambda: read(las_secret),
            lambda c: c.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=300),
            90,
            "the LAS's client certificate to be renewed",
        )
        las_cn = las_renewed.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
        assert las_cn[0].value == LAS_CN
        assert read(f"cas-{name}-tls").serial_number == same
        wait_for(
            lambda: crs.get(CAS, name, namespace),
            lambda c: condition(c, "CertificateValid")["reason"] == "Valid",
            60,
            "CertificateValid to be True again",
        )
    finally:
        crs.delete(CAS, name, namespace)
        crs.wait_gone(CAS, name, namespace)
