"""The secret release: what CAS sends a workload it attested, sealed to that workload.

The workload makes a fresh X25519 key pair and asks LAS for a quote whose report data is the
raw 32-byte public key. CAS seals the release to that key with HPKE (RFC 9180, base mode,
DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM), info = ``INFO`` + the config id. The
envelope is base64 of the 32-byte encapsulated key followed by ciphertext and tag; the
plaintext is JSON::

    {"policy": str, "service": str, "command": [str, ...],
     "environment": {NAME: value}, "secrets": {NAME: value}}

Only the holder of the private key, which never leaves the workload's process, can open it, so
a copied quote is worth nothing to anyone else, and LAS, being plain HTTP on the node, never
sees a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import x25519

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
INFO = b"enclave-operator secret release v1\n"
ALGORITHM = "HPKE-X25519-HKDF-SHA256-AES-256-GCM"
KEY_LENGTH = 32
_NAME = r"[a-z0-9]([-a-z0-9_.]{0,126}[a-z0-9])?"
CONFIG_ID = re.compile(rf"^(?P<policy>{_NAME})/(?P<service>{_NAME})$")


class ReleaseError(ValueError):
    """A release that cannot be opened or does not have the documented shape."""


@dataclass(frozen=True)
class Release:
    policy: str
    service: str
    command: tuple[str, ...]
    environment: dict[str, str]
    secrets: dict[str, str]

    def __repr__(self) -> str:  # never print a secret, even by accident
        names = sorted(self.secrets)
        return f"Release({self.policy}/{self.service}, command={self.command}, secrets={names})"


def config_id(text: str) -> tuple[str, str]:
    """``policy/service`` → (policy, service); ValueError says what a config id looks like."""
    m = CONFIG_ID.match(text)
    if not m:
        raise ValueError(f"{text[:300]!r} is not a config id: policy-name/service-name")
    return m["policy"], m["service"]


def raw_public(key: x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(release: Release, report_data: bytes) -> str:
    """CAS's side: seal to the X25519 key the quote's report data carries."""
    if len(report_data) != KEY_LENGTH:
        raise ReleaseError(f"reportData must be the workload's {KEY_LENGTH}-byte X25519 key")
    try:
        key = x25519.X25519PublicKey.from_public_bytes(report_data)
    except ValueError as e:
        raise ReleaseError("reportData is not an X25519 public key") from e
    body = {
        "policy": release.policy,
        "service": release.service,
        "command": list(release.command),
        "environment": release.environment,
        "secrets": release.secrets,
    }
    info = INFO + f"{release.policy}/{release.service}".encode()
    return base64.b64encode(SUITE.encrypt(json.dumps(body).encode(), key, info)).decode()


def _strings(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ReleaseError(f"release: {what} is not a map of strings")
    return value


def open_sealed(sealed: str, key: x25519.X25519PrivateKey, config: str) -> Release:
    """The workload's side; the error never quotes the plaintext."""
    try:
        data = base64.b64decode(sealed, validate=True)
        plain = SUITE.decrypt(data, key, INFO + config.encode())
    except (binascii.Error, ValueError, InvalidTag) as e:
        raise ReleaseError("release does not open with this workload's key") from e
    try:
        body = json.loads(plain)
    except ValueError as e:
        raise ReleaseError("release is not JSON") from e
    command = body.get("command") if isinstance(body, dict) else None
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise ReleaseError("release: command is not a list of strings")
    policy, service = config_id(config)
    if (body.get("policy"), body.get("service")) != (policy, service):
        raise ReleaseError(f"release is for another config id than {config}")
    return Release(
        policy,
        service,
        tuple(command),
        _strings(body.get("environment"), "environment"),
        _strings(body.get("secrets"), "secrets"),
    )
