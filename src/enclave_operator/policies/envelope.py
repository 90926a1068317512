"""Encrypted policies: HPKE (RFC 9180) to one CAS's X25519 key.

Suite: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM, base mode, with the info string
below. The envelope is base64 of the single-shot HPKE output: the 32-byte encapsulated key
followed by the AES-GCM ciphertext and tag. The CAS's key is exchanged as base64 of the raw
32-byte X25519 public key. The plaintext is JSON: ``{"policy": <text>, "signatures": [...]}``;
signatures are optional and, when present, make their signers the policy's owners.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke as _hpke
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import x25519

from enclave_operator.policies.signing import Signature

SUITE = _hpke.Suite(_hpke.KEM.X25519, _hpke.KDF.HKDF_SHA256, _hpke.AEAD.AES_256_GCM)
INFO = b"enclave-operator encrypted policy v1"
ENC_LENGTH = 32
TAG_LENGTH = 16


class EnvelopeError(ValueError):
    """An envelope or key that cannot be used; the message names the field."""


def public_key_text(key: x25519.X25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def load_public_key(text: str, field: str = "encryptionKey") -> x25519.X25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return x25519.X25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError) as e:
        raise EnvelopeError(f"{field}: not base64 of a 32-byte X25519 public key") from e


def seal(policy: str, signatures: Sequence[Signature], key: x25519.X25519PublicKey) -> str:
    plaintext = json.dumps(
        {"policy": policy, "signatures": [s.as_dict() for s in signatures]}
    ).encode()
    return base64.b64encode(SUITE.encrypt(plaintext, key, INFO)).decode()


def open_envelope(envelope: str, key: x25519.X25519PrivateKey) -> tuple[str, list[Signature]]:
    """The policy text and signatures inside; EnvelopeError says what is wrong, never what
    the plaintext was."""
    try:
        data = base64.b64decode(envelope, validate=True)
    except (binascii.Error, ValueError) as e:
        raise EnvelopeError("policy: not valid base64") from e
    if len(data) < ENC_LENGTH + TAG_LENGTH:
        raise EnvelopeError("policy: ciphertext is truncated")
    try:
        plaintext = SUITE.decrypt(data, key, INFO)
    except (InvalidTag, ValueError) as e:
        raise EnvelopeError("policy: does not decrypt with this CAS's key") from e
    try:
        inner: Any = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise EnvelopeError("policy: decrypted content is not UTF-8 JSON") from e
    if not isinstance(inner, dict) or not isinstance(inner.get("policy"), str):
        raise EnvelopeError("policy: decrypted content has no string 'policy'")
    try:
        inner["policy"].encode()
    except UnicodeEncodeError as e:  # a \ud800 escape: no UTF-8 text, nothing to sign or store
        raise EnvelopeError("policy: decrypted policy is not valid Unicode") from e
    raw_sigs = inner.get("signatures", [])
    if not isinstance(raw_sigs, list):
        raise EnvelopeError("policy: decrypted 'signatures' is not a list")
    signatures = []
    for i, s in enumerate(raw_sigs):
        if not (
            isinstance(s, dict)
            and isinstance(s.get("signer"), str)
            and isinstance(s.get("signature"), str)
        ):
            raise EnvelopeError(f"policy: decrypted signatures[{i}] needs signer and signature")
        signatures.append(Signature(s["signer"], s["signature"]))
    return inner["policy"], signatures
