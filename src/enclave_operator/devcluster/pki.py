"""Certificates for the dev cluster: one CA signs every serving and client certificate, and
everything is written to files that the control plane's flags and kubeconfigs name."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from enclave_operator.pki import Authority, Issued, key_pem

_VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class KeyPair:
    cert: Path
    key: Path


def _write(pair: KeyPair, issued: Issued) -> KeyPair:
    pair.cert.write_bytes(issued.cert)
    pair.key.write_bytes(issued.key)
    pair.key.chmod(0o600)
    return pair


class CertificateAuthority:
    """A throwaway CA living only as long as the dev cluster's directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._authority = Authority("enclave-dev-ca", _VALIDITY)
        self.pair = _write(
            KeyPair(directory / "ca.crt", directory / "ca.key"),
            Issued(self._authority.cert, self._authority.key),
        )

    def issue(
        self,
        name: str,
        cn: str,
        *,
        org: str | None = None,
        hosts: tuple[str, ...] = (),
        client: bool = False,
    ) -> KeyPair:
        """A serving certificate for `hosts`, or a client one (cn/org: user/group)."""
        issued = self._authority.issue(cn, org=org, hosts=hosts, client=client)
        return _write(
            KeyPair(self.directory / f"{name}.crt", self.directory / f"{name}.key"), issued
        )


def service_account_keys(directory: Path) -> KeyPair:
    """RSA key pair the API server signs service-account tokens with (RS256 is required)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _write(KeyPair(directory / "sa.pub", directory / "sa.key"), Issued(public, key_pem(key)))
