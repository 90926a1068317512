"""The simulated attestation quote and the LAS enrolment proof.

A quote is LAS's signed statement "a program with this measurement asked, on my node, for a
quote over this report data". It travels as a JSON object::

    {
      "format": "enclave-quote/v1",
      "measurement": "<64 lowercase hex digits: the program's measurement>",
      "reportData": "<standard base64 of 0..64 bytes chosen by the workload>",
      "las": "<base64 DER SubjectPublicKeyInfo of the LAS's Ed25519 attestation key>",
      "node": "<node name: a DNS name of at most 253 characters>",
      "issued": <integer, Unix seconds when LAS signed it>,
      "signature": "<base64 of the 64-byte Ed25519 signature>"
    }

The signature is Ed25519 over the UTF-8 bytes of these lines joined by "\\n", in this order:
``enclave-quote v1``, measurement, reportData, las, node, issued (decimal). No field may hold
a newline (each is validated first), so the signed text is unambiguous. CAS accepts a quote
only when ``las`` is a key it enrolled, the signature verifies, and ``issued`` is within
``MAX_AGE`` seconds of its clock. The enclave runtime puts the raw 32-byte X25519 key that CAS
must seal the release to into ``reportData`` (see ``release``).

Enrolment: LAS proves that it holds the key it enrols by signing
``enclave-las enrol v1\\n<las>\\n<node>\\n<timestamp>``.

A LAS key is named in messages by its fingerprint: ``sha256:`` and the first 16 hex digits of
SHA-256 over the DER, as policy signers are.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

FORMAT = "enclave-quote/v1"
MAX_AGE = 300
"""Seconds a quote stays acceptable (and how far its clock may run ahead of CAS's)."""
MAX_REPORT_DATA = 64
MEASUREMENT = re.compile(r"^[0-9a-f]{64}$")
NODE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
MAX_KEY_TEXT = 1024


class QuoteError(ValueError):
    """A quote or enrolment that cannot be accepted; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field, self.reason = field, message


def key_id(key: ed25519.Ed25519PublicKey) -> str:
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def fingerprint(key_text: str) -> str:
    """Short name of a LAS key for messages; never fails, even on garbage."""
    try:
        der = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        der = key_text.encode(errors="replace")
    return "sha256:" + hashlib.sha256(der).hexdigest()[:16]


def load_key(key_text: str, field: str = "las") -> ed25519.Ed25519PublicKey:
    if len(key_text) > MAX_KEY_TEXT:
        raise QuoteError(field, "longer than a public key")
    try:
        key = serialization.load_der_public_key(base64.b64decode(key_text, validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as e:
        raise QuoteError(field, "not base64 of a DER public key") from e
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise QuoteError(field, "not an Ed25519 key")
    return key


def decode_report_data(text: str, field: str = "reportData") -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise QuoteError(field, "not valid base64") from e
    if len(raw) > MAX_REPORT_DATA:
        raise QuoteError(field, f"more than {MAX_REPORT_DATA} bytes")
    return raw


def check_measurement(value: object, field: str = "measurement") -> str:
    if not isinstance(value, str) or not MEASUREMENT.match(value):
        raise QuoteError(field, "must be 64 lowercase hex digits (SHA-256)")
    return value


def check_node(value: object, field: str = "node") -> str:
    if not isinstance(value, str) or not NODE.match(value):
        raise QuoteError(field, "must be a node name (lowercase DNS name, at most 253)")
    return value


@dataclass(frozen=True)
class Quote:
    measurement: str
    report_data: bytes
    las: str
    node: str
    issued: int
    signature: bytes = b""

    def signed_bytes(self) -> bytes:
        data = base64.b64encode(self.report_data).decode()
        lines = ("enclave-quote v1", self.measurement, data, self.las, self.node, str(self.issued))
        return "\n".join(lines).encode()

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "measurement": self.measurement,
            "reportData": base64.b64encode(self.report_data).decode(),
            "las": self.las,
            "node": self.node,
            "issued": self.issued,
            "signature": base64.b64encode(self.signature).decode(),
        }


def issue(
    key: ed25519.Ed25519PrivateKey,
    node: str,
    measurement: str,
    report_data: bytes,
    now: float | None = None,
) -> Quote:
    """LAS's side: a quote over measurement and report data, signed by the node's key."""
    check_measurement(measurement)
    check_node(node)
    if len(report_data) > MAX_REPORT_DATA:
        raise QuoteError("reportData", f"more than {MAX_REPORT_DATA} bytes")
    stamp = int(time.time() if now is None else now)
    unsigned = Quote(measurement, report_data, key_id(key.public_key()), node, stamp)
    return replace(unsigned, signature=key.sign(unsigned.signed_bytes()))


def parse(raw: object, field: str = "quote") -> Quote:
    """A quote object as it came over the wire, every field checked; not yet verified."""
    if not isinstance(raw, Mapping):
        raise QuoteError(field, "must be an object")
    if raw.get("format") != FORMAT:
        raise QuoteError(f"{field}.format", f"must be {FORMAT!r}")
    for name in ("reportData", "las", "signature"):
        if not isinstance(raw.get(name), str):
            raise QuoteError(f"{field}.{name}", "a string is required")
    issued = raw.get("issued")
    if not isinstance(issued, int) or isinstance(issued, bool) or not 0 <= issued < 2**63:
        raise QuoteError(f"{field}.issued", "must be a non-negative integer (Unix seconds)")
    las = raw["las"]
    load_key(las, f"{field}.las")
    try:
        signature = base64.b64decode(raw["signature"], validate=True)
    except (binascii.Error, ValueError) as e:
        raise QuoteError(f"{field}.signature", "not valid base64") from e
    return Quote(
        check_measurement(raw.get("measurement"), f"{field}.measurement"),
        decode_report_data(raw["reportData"], f"{field}.reportData"),
        las,
        check_node(raw.get("node"), f"{field}.node"),
        issued,
        signature,
    )


def verify(q: Quote, now: float | None = None, field: str = "quote") -> None:
    """Signature and age; whether ``q.las`` is enrolled is the caller's question."""
    try:
        load_key(q.las).verify(q.signature, q.signed_bytes())
    except InvalidSignature as e:
        raise QuoteError(
            f"{field}.signature", f"does not verify with LAS key {fingerprint(q.las)}"
        ) from e
    age = (time.time() if now is None else now) - q.issued
    if not -MAX_AGE <= age <= MAX_AGE:
        raise QuoteError(
            f"{field}.issued", f"quote issued {int(age)} s from now; at most {MAX_AGE} s accepted"
        )


def enrolment_message(las: str, node: str, timestamp: int) -> bytes:
    return f"enclave-las enrol v1\n{las}\n{node}\n{timestamp}".encode()
