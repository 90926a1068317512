"""The CAS TLS certificate: its subject alternative names and the Secret carrying it."""

from __future__ import annotations

import base64
import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from enclave_operator.install.tls import invalid_domain, san_names, secret_name, tls_secret

SERVICE_NAMES = [
    "cas-enclave",
    "cas-enclave.ns1",
    "cas-enclave.ns1.svc",
    "cas-enclave.ns1.svc.cluster.local",
]


def test_without_domains_localhost_and_the_service_names():
    assert san_names([], "enclave", "ns1") == ["localhost", *SERVICE_NAMES]


def test_domains_come_first_once_each_lower_case():
    names = san_names(
        ["CAS.Example.com", "10.0.0.5", "cas.example.com", "localhost"], "enclave", "ns1"
    )
    assert names == ["cas.example.com", "10.0.0.5", "localhost", *SERVICE_NAMES]


def test_the_service_is_named_after_the_cas_release():
    assert san_names([], "x", "ns")[1] == "cas-x"
    assert secret_name("enclave") == "cas-enclave-tls"


@pytest.mark.parametrize(
    "good", ["example.com", "a.b.c", "*.example.com", "10.1.2.3", "::1", "LOCALHOST"]
)
def test_valid_domains(good: str):
    assert invalid_domain(good) is None


@pytest.mark.parametrize(
    "bad", ["under_score.com", "-lead.com", "a..b", "", "a b", "x" * 64 + ".com"]
)
def test_invalid_domains(bad: str):
    assert invalid_domain(bad) is not None


def test_the_secret_holds_a_certificate_for_every_name_signed_by_its_ca():
    secret = tls_secret(["cas.example.com", "10.0.0.5"], "enclave", "ns1")
    assert secret["type"] == "kubernetes.io/tls"
    assert secret["metadata"]["name"] == "cas-enclave-tls"
    assert secret["metadata"]["namespace"] == "ns1"
    assert set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "cas.example.com",
        "localhost",
        *SERVICE_NAMES,
    ]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "cas.example.com"
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.not_valid_after_utc < ca.not_valid_after_utc


def test_a_long_first_domain_still_fits_the_common_name():
    long = ".".join(["a" * 60, "b" * 60, "example.com"])
    secret = tls_secret([long], "enclave", "ns1")
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    assert len(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value) == 64
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert long in sans.get_values_for_type(x509.DNSName)
