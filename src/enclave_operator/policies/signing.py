"""Signers and signatures over policy text.

A signer is identified by its public key: the base64 of its DER SubjectPublicKeyInfo, which
says the algorithm too. Ed25519 keys sign the policy bytes directly; ECDSA P-256 keys sign them
with SHA-256 (DER-encoded signature). Messages name a signer by its fingerprint, ``sha256:``
and the first 16 hex digits of SHA-256 over that DER, short enough to read and compare.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


class SignatureError(ValueError):
    """A signature, signer or key that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Signature:
    signer: str
    signature: str

    def as_dict(self) -> dict[str, str]:
        return {"signer": self.signer, "signature": self.signature}


def signer_id(key: PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def fingerprint(signer: str) -> str:
    """Short, stable name of a signer for messages; never fails, even on garbage."""
    try:
        der = base64.b64decode(signer, validate=True)
    except (binascii.Error, ValueError):
        der = signer.encode(errors="replace")
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def public_key(signer: str) -> PublicKey:
    """The key a signer id names; Ed25519 or ECDSA P-256, nothing else."""
    try:
        der = base64.b64decode(signer, validate=True)
        key = serialization.load_der_public_key(der)
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as e:
        raise SignatureError(f"signer {fingerprint(signer)} is not a base64 DER public key") from e
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SignatureError(
        f"signer {fingerprint(signer)}: unsupported key algorithm (Ed25519 or ECDSA P-256)"
    )


def sign(message: bytes, key: PrivateKey) -> Signature:
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.sign(message)
    elif isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        raw = key.sign(message, ec.ECDSA(hashes.SHA256()))
    else:
        raise SignatureError("unsupported key algorithm (Ed25519 or ECDSA P-256)")
    return Signature(signer_id(key.public_key()), base64.b64encode(raw).decode())


def verify(message: bytes, signature: Signature) -> None:
    """Raise SignatureError naming the signer unless the signature verifies over message."""
    key = public_key(signature.signer)
    who = fingerprint(signature.signer)
    try:
        raw = base64.b64decode(signature.signature, validate=True)
    except (binascii.Error, ValueError) as e:
        raise SignatureError(f"signature by {who} is not valid base64") from e
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(raw, message)
        else:
            key.verify(raw, message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as e:
        raise SignatureError(f"signature by {who} does not verify") from e


def generate() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def write_key_pair(key: PrivateKey, path: Path) -> Path:
    """Private key (PKCS#8 PEM, mode 0600, never world-readable) at path, public at path.pub."""
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private)
    public = path.with_name(path.name + ".pub")
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return public


def load_private_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as e:
        raise SignatureError(f"{path}: not an unencrypted PEM private key ({e})") from e
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    if isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    raise SignatureError(f"{path}: unsupported key algorithm (Ed25519 or ECDSA P-256)")


def request_message(method: str, path: str, timestamp: int) -> bytes:
    """What an owner signs to authorise a request that changes a registered policy; the
    timestamp bounds replays (the CAS accepts it within a few minutes of its own clock)."""
    return f"enclave-cas request v1\n{method.upper()} {path}\n{timestamp}".encode()
