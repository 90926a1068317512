"""The CAS's own keys: its policy encryption key and its TLS identity.

The X25519 encryption key is made once and kept in the database directory (mode 0600): it is
the only way to read the encrypted policies meant for this CAS, so it never appears in a log,
a response or an error. The TLS certificate comes from ``--tls-dir`` (the Secret that
``enclavectl install`` writes, whose ``ca.crt`` also verifies the operator's client
certificate); without one, a self-signed certificate is made once and kept beside the key.
A renewed certificate in ``--tls-dir`` is taken without a restart (``keep_fresh``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from enclave_operator.pki import OPERATOR_CN, Authority

log = logging.getLogger("enclave_operator.cas")
KEY_FILE = "encryption.key"
SELF_SIGNED = ("self-signed.crt", "self-signed.key", "self-signed-ca.crt")
"""Made once when --tls-dir has no certificate; clients verify with the CA file (--ca)."""


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def encryption_key(db_dir: Path) -> x25519.X25519PrivateKey:
    path = db_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, x25519.X25519PrivateKey):
            raise ValueError(f"{path} does not hold an X25519 key")
        os.chmod(path, 0o600)
        return key
    key = x25519.X25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(path, pem)
    return key


@dataclass(frozen=True)
class TLSFiles:
    cert: Path
    key: Path
    client_ca: Path | None
    """CA that signed the operator's client certificate; None: no client identities."""


def tls_files(tls_dir: Path | None, db_dir: Path) -> TLSFiles:
    if tls_dir and (tls_dir / "tls.crt").exists() and (tls_dir / "tls.key").exists():
        ca = tls_dir / "ca.crt"
        return TLSFiles(tls_dir / "tls.crt", tls_dir / "tls.key", ca if ca.exists() else None)
    cert, key, ca = (db_dir / n for n in SELF_SIGNED)
    if not (cert.exists() and key.exists() and ca.exists()):
        hosts = ["localhost", "127.0.0.1", socket.gethostname()]
        authority = Authority("enclave-cas-self-signed", dt.timedelta(days=3650))
        issued = authority.issue("localhost", hosts=hosts)
        _write_private(key, issued.key)
        cert.write_bytes(issued.cert)
        ca.write_bytes(authority.cert)
        log.warning("no certificate in --tls-dir: serving a self-signed one (CA: %s)", ca)
    return TLSFiles(cert, key, None)


def server_context(files: TLSFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(files.cert, files.key)
    if files.client_ca:
        ctx.load_verify_locations(files.client_ca)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # clients without a certificate are anonymous
    return ctx


def is_operator(peer_der: bytes | None) -> bool:
    """A client certificate (already verified by TLS against the client CA) of the operator:
    its CommonName and the clientAuth usage, so the CAS's own serving certificate, signed by
    the same CA, does not pass."""
    if not peer_der:
        return False
    cert = x509.load_der_x509_certificate(peer_der)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return (
        bool(names) and names[0].value == OPERATOR_CN and ExtendedKeyUsageOID.CLIENT_AUTH in usage
    )


def _stamp(files: TLSFiles) -> tuple[tuple[int, int, int], ...]:
    paths = [files.cert, files.key, *([files.client_ca] if files.client_ca else [])]
    return tuple((st.st_ino, st.st_mtime_ns, st.st_size) for st in (p.stat() for p in paths))


def _reload(files: TLSFiles, context: ssl.SSLContext, scratch: Path) -> str:
    """Load the files into the live context, all or nothing: read once into private copies
    (the kubelet may swap the Secret's files between two reads), tried on a scratch context
    first (a failed load would leave the live one with a certificate and a key that do not
    match). The new certificate's expiry, for the log."""
    scratch.mkdir(mode=0o700, exist_ok=True)
    cert, key = scratch / "tls.crt", scratch / "tls.key"
    cert.write_bytes(files.cert.read_bytes())
    _write_private(key, files.key.read_bytes())
    ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
    context.load_cert_chain(cert, key)
    if files.client_ca:
        context.load_verify_locations(files.client_ca)
    key.unlink()
    return str(x509.load_pem_x509_certificate(cert.read_bytes()).not_valid_after_utc)


async def keep_fresh(files: TLSFiles, context: ssl.SSLContext, scratch: Path, every: float) -> None:
    """Take a renewed certificate without a restart: the kubelet updates a mounted Secret in
    place, so look at the files every ``every`` seconds and, when they changed, load them into
    the same context. New connections get the new certificate, open ones keep theirs: renewing
    costs no connection. A change that does not load is tried again at the next look."""
    try:
        stamp = _stamp(files)
    except OSError:
        stamp = ()
    while True:
        await asyncio.sleep(every)
        try:
            now = _stamp(files)
            if now == stamp:
                continue
            until = _reload(files, context, scratch)
        except (OSError, ssl.SSLError, ValueError) as e:
            log.warning("the certificate in %s changed but does not load yet: %s", files.cert, e)
            continue
        stamp = now
        log.info("certificate reloaded from %s; valid until %s", files.cert.parent, until)
