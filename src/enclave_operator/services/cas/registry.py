"""What the CAS does with a policy: check it, store it, describe it, delete it.

No HTTP here: each refusal is a ``Refusal`` carrying the status code, a machine-readable code,
the field concerned and a message for people. The HTTP layer only translates.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import x25519

from enclave_operator.api.policies import MAX_SIGNATURES
from enclave_operator.policies import document, envelope, signing
from enclave_operator.services.cas.store import PolicyRecord, Store

REQUEST_SKEW = 300  # seconds a signed request's timestamp may differ from the CAS's clock
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
"""Unix seconds in ASCII digits: str.isdigit() would also pass '²', which int() refuses."""


class Refusal(Exception):
    def __init__(self, status: int, code: str, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field


def _string(body: Mapping[str, Any], field: str, limit: int, prefix: str = "") -> str:
    value, where = body.get(field), f"{prefix}{field}"
    if not isinstance(value, str) or not value:
        raise Refusal(400, "InvalidField", f"{where}: a non-empty string is required", where)
    if len(value) > limit:
        raise Refusal(400, "InvalidField", f"{where}: longer than {limit} characters", where)
    if not value.isascii():
        try:  # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 text holds
            value.encode()
        except UnicodeEncodeError as e:
            raise Refusal(
                400, "InvalidField", f"{where}: not valid Unicode (character {e.start})", where
            ) from e
    return value


def signatures_of(body: Mapping[str, Any], field: str = "signatures") -> list[signing.Signature]:
    raw = body.get(field)
    if not isinstance(raw, list) or not raw:
        raise Refusal(400, "InvalidField", f"{field}: a non-empty list is required", field)
    if len(raw) > MAX_SIGNATURES:
        raise Refusal(400, "InvalidField", f"{field}: more than {MAX_SIGNATURES}", field)
    out = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise Refusal(400, "InvalidField", f"{where}: must be an object", where)
        signer = _string(item, "signer", 8192, f"{where}.")
        out.append(signing.Signature(signer, _string(item, "signature", 8192, f"{where}.")))
    return out


def verified_owners(policy: str, signatures: Sequence[signing.Signature]) -> tuple[str, ...]:
    """Every signature must verify over the exact policy bytes; the signers own the policy."""
    message = policy.encode()
    for i, sig in enumerate(signatures):
        try:
            signing.verify(message, sig)
        except signing.SignatureError as e:
            raise Refusal(422, "SignatureInvalid", str(e), f"signatures[{i}]") from e
    return tuple(dict.fromkeys(s.signer for s in signatures))


def parsed(policy: str) -> document.Policy:
    try:
        return document.parse(policy)
    except document.PolicyError as e:
        raise Refusal(422, "PolicyInvalid", f"policy: {e}", "policy") from e


def describe(record: PolicyRecord, created: bool | None = None) -> dict[str, Any]:
    """A policy's metadata; never its text (an encrypted policy's plaintext stays inside)."""
    out: dict[str, Any] = {
        "name": record.name,
        "kind": record.kind,
        "digest": record.digest,
        "signers": [{"signer": s, "fingerprint": signing.fingerprint(s)} for s in record.owners],
        "registered": record.created,
    }
    if created is not None:
        out["created"] = created
    return out


class Registry:
    def __init__(self, store: Store, key: x25519.X25519PrivateKey) -> None:
        self.store, self._key = store, key
        self.public_key = envelope.public_key_text(key.public_key())

    async def register_signed(self, body: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        policy = _string(body, "policy", 512 * 1024)
        owners = verified_owners(policy, signatures_of(body))
        return await self._store(parsed(policy).name, "signed", policy, owners)

    async def register_encrypted(self, body: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        sealed = _string(body, "policy", 1024 * 1024)
        key = _string(body, "encryptionKey", 8192)
        try:
            envelope.load_public_key(key)
        except envelope.EnvelopeError as e:
            raise Refusal(400, "InvalidField", str(e), "encryptionKey") from e
        if key != self.public_key:
            raise Refusal(
                422,
                "WrongCAS",
                "encrypted for another CAS: encryptionKey is not this CAS's key"
                " (encrypt again with `enclavectl policy encrypt --cas` for this CAS)",
                "encryptionKey",
            )
        try:
            policy, signatures = envelope.open_envelope(sealed, self._key)
        except envelope.EnvelopeError as e:
            raise Refusal(422, "EnvelopeInvalid", str(e), "policy") from e
        owners = verified_owners(policy, signatures) if signatures else ()
        return await self._store(parsed(policy).name, "encrypted", policy, owners)

    async def _store(
        self, name: str, kind: str, policy: str, owners: tuple[str, ...]
    ) -> tuple[bool, dict[str, Any]]:
        digest = document.digest(policy)
        record = PolicyRecord(name, kind, digest, policy, owners, time.time())
        created, existing = await self.store.insert(record)
        if not created and (existing.digest != digest or existing.kind != kind):
            raise Refusal(
                409,
                "NameTaken",
                f"policy {name!r} is already registered with other content"
                f" (digest {existing.digest[:16]}…): delete it first",
                "policy",
            )
        return created, describe(existing)

    def get(self, name: str) -> dict[str, Any]:
        record = self.store.get(name)
        if record is None:
            raise Refusal(404, "NotFound", f"no policy named {name!r}")
        return describe(record)

    async def delete(
        self, name: str, path: str, operator: bool, headers: Mapping[str, str]
    ) -> None:
        record = self.store.get(name)
        if record is None:
            raise Refusal(404, "NotFound", f"no policy named {name!r}")
        if not operator:
            self._authorise(record, path, headers)
        await self.store.delete(name, record.digest)

    def _authorise(self, record: PolicyRecord, path: str, headers: Mapping[str, str]) -> None:
        signer = headers.get("X-Enclave-Signer")
        signature = headers.get("X-Enclave-Signature")
        stamp = headers.get("X-Enclave-Timestamp", "")
        if not signer or not signature:
            raise Refusal(
                403, "Forbidden", "only an owner of the policy (a signed request) or the operator"
            )
        if signer not in record.owners:
            who = signing.fingerprint(signer)
            raise Refusal(403, "Forbidden", f"{who} is not an owner of {record.name!r}")
        if not _TIMESTAMP.fullmatch(stamp) or abs(int(stamp) - time.time()) > REQUEST_SKEW:
            raise Refusal(403, "Forbidden", "X-Enclave-Timestamp missing or too far from now")
        message = signing.request_message("DELETE", path, int(stamp))
        try:
            signing.verify(message, signing.Signature(signer, signature))
        except signing.SignatureError as e:
            raise Refusal(403, "Forbidden", f"request {e}") from e
