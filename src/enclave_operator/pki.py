"""Certificates in memory: a CA that signs serving and client certificates.

Every certificate names its key (SubjectKeyIdentifier) and its issuer's (AuthorityKeyIdentifier),
which OpenSSL's strict verification requires (VERIFY_X509_STRICT, on by default in the SSL
contexts of Python 3.13).

The dev cluster writes them to files (``devcluster.pki``); ``enclavectl install`` puts the CAS
certificate into a Secret. Both need the same few X.509 choices, made once here.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPERATOR_CN = "enclave-operator"
"""CommonName of the operator's client certificate for CAS mutual TLS; the CAS grants it
what the owners of a policy may do."""
OPERATOR_CLIENT_SECRET = "enclave-operator-cas-client"
"""Secret in the operator's namespace holding that certificate (tls.crt, tls.key) and the CA
(ca.crt) that signed it and the CAS's certificate; `enclavectl install` writes it."""
LAS_CN = "enclave-las"
"""CommonName of a LAS's client certificate: CAS records its enrolment as authenticated."""


def las_client_secret(las_release: str) -> str:
    """The Secret of a LAS release's client certificate (the LAS chart mounts it)."""
    return f"{las_release}-client"


MAX_COMMON_NAME = 64
"""X.509's upper bound on a CommonName; longer names only fit in the alternative names."""


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, PEM-encoded."""

    cert: bytes
    key: bytes


def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def distinguished_name(cn: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn[:MAX_COMMON_NAME])]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def alternative_names(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """IP addresses as IP entries (clients compare them so), everything else as DNS names."""
    sans: list[x509.GeneralName] = []
    for host in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            sans.append(x509.DNSName(host))
    return sans


_CA_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


class Authority:
    """A self-signed CA whose key never leaves memory unless the caller writes it out."""

    def __init__(self, cn: str, validity: dt.timedelta) -> None:
        self.validity = validity
        self._key = ec.generate_private_key(ec.SECP256R1())
        public = self._key.public_key()
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(distinguished_name(cn))
            .issuer_name(distinguished_name(cn))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_CA_USAGE, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )

    @classmethod
    def loaded(cls, cert: bytes, key: bytes) -> Authority:
        """A CA read back (PEM), signing for the rest of its lifetime."""
        authority = cls.__new__(cls)
        authority._cert = x509.load_pem_x509_certificate(cert)
        authority._key = load_pem_private_key(key, password=None)  # type: ignore[assignment]
        authority.validity = authority.not_after - dt.datetime.now(dt.UTC)
        return authority

    @property
    def cert(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    @property
    def not_after(self) -> dt.datetime:
        return self._cert.not_valid_after_utc

    def _authority_key_id(self) -> x509.AuthorityKeyIdentifier:
        """Names this CA's key as its own SubjectKeyIdentifier does (a CA read back from an
        older Secret may have none: then the key's own hash, which is what it would be)."""
        try:
            ski = self._cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
        except x509.ExtensionNotFound:
            return x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._cert.public_key()  # type: ignore[arg-type]
            )
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski.value)

    @property
    def key(self) -> bytes:
        return key_pem(self._key)

    def issue(
        self,
        cn: str,
        *,
        org: str | None = None,
        hosts: Iterable[str] = (),
        client: bool = False,
        validity: dt.timedelta | None = None,
    ) -> Issued:
        """A serving certificate for ``hosts``, or a client one (cn/org: user/group); valid as
        long as the CA unless ``validity`` says less."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(distinguished_name(cn, org))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + min(validity or self.validity, self.validity))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(self._authority_key_id(), critical=False)
        )
        if sans := alternative_names(hosts):
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem(key))


def reissue(cert: bytes, ca_cert: bytes, ca_key: bytes, validity: dt.timedelta) -> Issued:
    """A new key and certificate with the names and usage of ``cert`` (PEM), from the CA that
    signed it: what renewing needs, since clients keep trusting that CA."""
    old = x509.load_pem_x509_certificate(cert)
    authority = Authority.loaded(ca_cert, ca_key)
    names = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        sans = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        hosts = [str(n) for n in sans.get_values_for_type(x509.DNSName)]
        hosts += [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        hosts = []
    try:
        usage = old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        # a serving certificate stays one (Helm's genSignedCert also allows clientAuth)
        client = ExtendedKeyUsageOID.SERVER_AUTH not in usage and (
            ExtendedKeyUsageOID.CLIENT_AUTH in usage
        )
    except x509.ExtensionNotFound:
        client = False
    cn = str(names[0].value) if names else (hosts[0] if hosts else "")
    return authority.issue(cn, hosts=hosts, client=client, validity=validity)


def load_chain(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """Load a certificate and key held in memory. ``ssl`` reads them only from files, so they
    live in a private directory (mode 0700) for the moment of loading and are removed at once:
    no private key is left on disk after the process, however it ends."""
    with tempfile.TemporaryDirectory(prefix="enclave-tls-") as directory:
        cert_file, key_file = Path(directory) / "tls.crt", Path(directory) / "tls.key"
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        cert_file.write_bytes(cert)
        context.load_cert_chain(cert_file, key_file)
