"""Every certificate the project makes passes OpenSSL's strict verification (VERIFY_X509_STRICT,
on by default from Python 3.13), which wants SubjectKeyIdentifier and AuthorityKeyIdentifier:
checked by a real TLS handshake between default contexts, in memory."""

from __future__ import annotations

import base64
import datetime as dt
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from enclave_operator.devcluster.pki import CertificateAuthority
from enclave_operator.install.tls import tls_secrets
from enclave_operator.pki import Authority, distinguished_name, key_pem
from enclave_operator.services.cas import identity
from enclave_operator.services.cas.attestation import is_las
from enclave_operator.webhook.certs import Material, plan
from enclave_operator.webhook.settings import Settings


def _strict(ctx: ssl.SSLContext) -> ssl.SSLContext:
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT  # the 3.13 default, set on every version
    return ctx


def handshake(
    tmp: Path, ca: bytes, cert: bytes, key: bytes, client: tuple[bytes, bytes] | None = None
) -> None:
    """A TLS handshake with a server serving (cert, key) to a default client trusting ca, both
    strict; with ``client``, the server requires that client certificate, signed by ca."""
    files = {"ca.pem": ca, "cert.pem": cert, "key.pem": key}
    if client:
        files |= {"client.pem": client[0], "client.key": client[1]}
    for name, data in files.items():
        (tmp / name).write_bytes(data)
    server = _strict(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    server.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    if client:
        server.load_verify_locations(tmp / "ca.pem")
        server.verify_mode = ssl.CERT_REQUIRED
    user = _strict(ssl.create_default_context(cafile=tmp / "ca.pem"))
    user.check_hostname = False  # the names are not what is tested here
    if client:
        user.load_cert_chain(tmp / "client.pem", tmp / "client.key")
    pipes = [(ssl.MemoryBIO(), ssl.MemoryBIO()) for _ in range(2)]  # client→server, back
    c = user.wrap_bio(pipes[1][0], pipes[0][1], server_side=False)
    s = server.wrap_bio(pipes[0][0], pipes[1][1], server_side=True)
    done = {"c": False, "s": False}
    for _ in range(20):
        for name, end in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    end.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        pipes[0][0].write(pipes[0][1].read())
        pipes[1][0].write(pipes[1][1].read())
        if all(done.values()):
            if client:  # TLS 1.3: the server checks the client's certificate on first read
                c.write(b"x")
                pipes[0][0].write(pipes[0][1].read())
                assert s.read(1) == b"x"
            return
    raise AssertionError("handshake did not finish")


def test_an_authoritys_certificates_pass_strict_verification(tmp_path: Path):
    ca = Authority("test-ca", dt.timedelta(days=1))
    serving = ca.issue("localhost", hosts=["localhost", "127.0.0.1"])
    client = ca.issue("someone", client=True)
    handshake(tmp_path, ca.cert, serving.cert, serving.key, (client.cert, client.key))
    leaf = x509.load_pem_x509_certificate(serving.cert)
    root = x509.load_pem_x509_certificate(ca.cert)
    ski = root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest


def test_the_cas_operator_and_las_certificates_of_an_installation(tmp_path: Path):
    cas, _, operator, las = tls_secrets(["cas.example.com"], "enclave", "enclave-system")
    assert las["metadata"]["name"] == "las-enclave-client"  # the LAS chart mounts it

    def pem(secret: dict[str, object], key: str) -> bytes:
        data = secret["data"]
        assert isinstance(data, dict)
        return base64.b64decode(data[key])

    client = (pem(operator, "tls.crt"), pem(operator, "tls.key"))
    handshake(tmp_path, pem(cas, "ca.crt"), pem(cas, "tls.crt"), pem(cas, "tls.key"), client)
    las_client = (pem(las, "tls.crt"), pem(las, "tls.key"))
    handshake(tmp_path, pem(cas, "ca.crt"), pem(cas, "tls.crt"), pem(cas, "tls.key"), las_client)
    # CAS counts it as a LAS's (CommonName and clientAuth)
    assert is_las(x509.load_pem_x509_certificate(las_client[0]).public_bytes(Encoding.DER))


def test_the_cas_self_signed_certificate(tmp_path: Path):
    db = tmp_path / "db"
    db.mkdir()
    files = identity.tls_files(None, db)
    ca = (db / "self-signed-ca.crt").read_bytes()
    handshake(tmp_path, ca, files.cert.read_bytes(), files.key.read_bytes())


def test_the_webhook_certificate(tmp_path: Path):
    material = plan(Material(), Settings(), ["webhook.svc"], dt.datetime.now(dt.UTC), 0.0)
    handshake(tmp_path, material.bundle, material.cert, material.key)


def test_the_dev_clusters_certificates(tmp_path: Path):
    authority = CertificateAuthority(tmp_path)
    server = authority.issue("apiserver", "kube-apiserver", hosts=("127.0.0.1",))
    client = authority.issue("admin", "admin", org="system:masters", client=True)
    work = tmp_path / "work"
    work.mkdir()
    handshake(
        work,
        authority.pair.cert.read_bytes(),
        server.cert.read_bytes(),
        server.key.read_bytes(),
        (client.cert.read_bytes(), client.key.read_bytes()),
    )


def test_a_certificate_without_key_identifiers_fails_strict_verification(tmp_path: Path):
    """The check itself can fail: the same chain without the identifiers is refused."""

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    root = (
        x509.CertificateBuilder()
        .subject_name(distinguished_name("bare-ca"))
        .issuer_name(distinguished_name("bare-ca"))
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(distinguished_name("leaf"))
        .issuer_name(root.subject)
        .public_key(leaf_key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )

    with pytest.raises(ssl.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        handshake(
            tmp_path,
            root.public_bytes(Encoding.PEM),
            leaf.public_bytes(Encoding.PEM),
            key_pem(leaf_key),
        )
