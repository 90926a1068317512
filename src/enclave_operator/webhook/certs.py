"""The webhook's CA and serving certificate, and when each is renewed. Pure but for the clock
the caller passes in.

Rotation without a failed admission: the API server trusts the configuration's caBundle,
which holds the current CA and, during a CA change, the previous one. A new serving
certificate from the same CA needs no bundle change. A new CA first joins the bundle next to
the old one; only once the API server has had it for ``propagation`` seconds does it sign the
serving certificate, and only then does the old CA leave the bundle.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from enclave_operator.pki import Authority
from enclave_operator.webhook.settings import Settings

CA_CN = "enclave-operator webhook CA"
KEYS = ("ca.crt", "ca.key", "previous-ca.crt", "tls.crt", "tls.key")


class StoredAuthority(Authority):
    """A CA read back from its Secret, signing for the rest of its lifetime."""

    def __init__(self, cert: bytes, key: bytes, now: dt.datetime) -> None:
        self._cert = x509.load_pem_x509_certificate(cert)
        loaded = load_pem_private_key(key, password=None)
        self._key = loaded  # type: ignore[assignment]
        self.validity = self._cert.not_valid_after_utc - now


@dataclass(frozen=True)
class Material:
    """What the Secret holds (PEM); empty bytes for what is missing."""

    ca_cert: bytes = b""
    ca_key: bytes = b""
    previous_ca: bytes = b""
    cert: bytes = b""
    key: bytes = b""

    @classmethod
    def from_data(cls, data: Mapping[str, bytes]) -> Material:
        return cls(*(data.get(k, b"") for k in KEYS))

    def data(self) -> dict[str, bytes]:
        return dict(
            zip(
                KEYS,
                (self.ca_cert, self.ca_key, self.previous_ca, self.cert, self.key),
                strict=True,
            )
        )

    @property
    def bundle(self) -> bytes:
        """The caBundle: the current CA, then the previous one while it may still be needed."""
        return self.ca_cert + self.previous_ca


def _cert(pem: bytes) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(pem) if pem else None
    except ValueError:
        return None


def _left(cert: x509.Certificate, now: dt.datetime) -> float:
    return (cert.not_valid_after_utc - now).total_seconds()


def _hosts(cert: x509.Certificate) -> set[str]:
    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    names = {str(n) for n in sans.get_values_for_type(x509.DNSName)}
    return names | {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}


def fingerprint(pem: bytes) -> str:
    cert = _cert(pem)
    return (
        cert.fingerprint(cert.signature_hash_algorithm).hex()
        if cert and cert.signature_hash_algorithm
        else ""
    )


def plan(
    current: Material,
    settings: Settings,
    hosts: Iterable[str],
    now: dt.datetime,
    ca_trusted_for: float,
) -> Material:
    """The material to have now. ``ca_trusted_for``: seconds the API server has had the
    current CA in its bundle (0 when not yet seen there)."""
    wanted = set(hosts)
    m = current
    ca = _cert(m.ca_cert)
    if ca is None or not m.ca_key or _left(ca, now) < settings.ca_validity / 3:
        authority = Authority(CA_CN, dt.timedelta(seconds=settings.ca_validity))
        old = m.ca_cert if ca is not None and _left(ca, now) > 0 else b""
        m = replace(m, ca_cert=authority.cert, ca_key=authority.key, previous_ca=old)
        ca, ca_trusted_for = _cert(m.ca_cert), 0.0
    assert ca is not None
    leaf = _cert(m.cert)
    previous = _cert(m.previous_ca)
    by_current = leaf is not None and _signed(leaf, ca)
    in_bundle = by_current or (
        leaf is not None and previous is not None and _signed(leaf, previous)
    )
    due = (
        leaf is None
        or not m.key
        or not in_bundle
        or _left(leaf, now) < settings.cert_validity / 3
        or _hosts(leaf) != wanted
    )
    switch = not by_current and ca_trusted_for >= settings.propagation
    # A certificate the API server cannot verify is replaced at once; one it can verify waits
    # until the new CA has reached the API server.
    urgent = leaf is None or not in_bundle or _left(leaf, now) <= 0
    if switch or (due and (by_current or urgent)):
        signer = StoredAuthority(m.ca_cert, m.ca_key, now)
        issued = signer.issue(
            "enclave-operator-webhook",
            hosts=sorted(wanted),
            validity=dt.timedelta(seconds=settings.cert_validity),
        )
        m = replace(m, cert=issued.cert, key=issued.key)
        by_current = True
    if by_current and m.previous_ca:
        m = replace(m, previous_ca=b"")
    return m


def _signed(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    """Signed by this very CA (a renewed CA has the same subject but another key)."""
    try:
        leaf.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True
