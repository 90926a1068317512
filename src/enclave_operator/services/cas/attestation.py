"""CAS's enclave port: LAS enrolment and the attestation that releases a service's secrets.

| method | path | what |
|---|---|---|
| POST | /v1/las/enrol | a LAS enrols its attestation key: ``{key, node, timestamp, proof}`` |
| POST | /v1/attest | a workload presents ``{configId: "policy/service", quote}``; the answer is the
  service's command, environment and secrets, sealed to the key in the quote's report data |

Enrolment in simulation: there is no hardware to vouch for a LAS, so CAS accepts any LAS that
proves possession of its key (``proof`` signs ``quote.enrolment_message``) and records whether
it also presented a client certificate with CommonName ``enclave-las`` and clientAuth, signed
by the CA in CAS's ``--tls-dir`` (mutual TLS). Without one the enrolment is logged as
``unauthenticated (simulation)``. ``ENCLAVE_CAS_LAS_ENROLMENT=certificate`` makes that
certificate mandatory.

Refusals: 400 malformed body or quote (the field is named); 403 quote from a LAS this CAS did
not enrol, a signature that does not verify, a stale quote, a measurement the policy does not
grant the service; 404 unknown config id. Secrets are never logged.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from enclave_operator.attestation import quote as quotes
from enclave_operator.attestation import release
from enclave_operator.pki import LAS_CN
from enclave_operator.policies import document
from enclave_operator.services.cas.registry import Refusal, Registry

log = logging.getLogger("enclave_operator.cas.attestation")
ENROLMENT_ENV = "ENCLAVE_CAS_LAS_ENROLMENT"
POLICY_CACHE = 1024


class LasKey:
    __slots__ = ("authenticated", "node")

    def __init__(self, node: str, authenticated: bool) -> None:
        self.node, self.authenticated = node, authenticated


def is_las(peer_der: bytes | None) -> bool:
    """A client certificate (verified by TLS against CAS's client CA) issued to a LAS."""
    if not peer_der:
        return False
    cert = x509.load_der_x509_certificate(peer_der)
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    try:
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return False
    return bool(names) and names[0].value == LAS_CN and ExtendedKeyUsageOID.CLIENT_AUTH in usage


def _peer(request: web.Request) -> bytes | None:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    return ssl_object.getpeercert(binary_form=True) if ssl_object else None


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Refusal(400, "InvalidBody", f"body is not UTF-8 JSON: {e}", "body") from e
    if not isinstance(body, dict):
        raise Refusal(400, "InvalidBody", "body must be a JSON object", "body")
    return body


def _bad(e: quotes.QuoteError | ValueError, field: str = "") -> Refusal:
    where = e.field if isinstance(e, quotes.QuoteError) else field
    return Refusal(400, "InvalidField", str(e), where)


class Attestation:
    """Enrolled LAS keys (kept in memory, written through to the store) and the release."""

    def __init__(self, registry: Registry, require_certificate: bool) -> None:
        self.registry, self.require_certificate = registry, require_certificate
        self.keys: dict[str, LasKey] = {}
        self._policies: dict[str, document.Policy] = {}

    async def load(self, _: web.Application | None = None) -> None:
        rows = await self.registry.store.write(
            lambda c: c.execute("SELECT key, node, authenticated FROM las_keys").fetchall()
        )
        self.keys = {k: LasKey(n, bool(a)) for k, n, a in rows}
        log.info(
            "%d LAS keys enrolled; certificate required: %s", len(rows), self.require_certificate
        )

    async def enrol(self, body: Mapping[str, Any], peer: bytes | None) -> dict[str, Any]:
        key, node, stamp, proof = (body.get(f) for f in ("key", "node", "timestamp", "proof"))
        if not isinstance(key, str) or not isinstance(proof, str):
            raise Refusal(400, "InvalidField", "key and proof: strings are required", "key")
        if not isinstance(stamp, int) or isinstance(stamp, bool) or not 0 <= stamp < 2**63:
            raise Refusal(400, "InvalidField", "timestamp: Unix seconds are required", "timestamp")
        try:
            public = quotes.load_key(key, "key")
            quotes.check_node(node)
            signature = quotes.decode_report_data(proof, "proof")
        except quotes.QuoteError as e:
            raise _bad(e) from e
        who = quotes.fingerprint(key)
        assert isinstance(node, str)
        if abs(stamp - time.time()) > quotes.MAX_AGE:
            raise Refusal(403, "EnrolmentStale", f"timestamp of LAS {who} too far from now")
        try:
            public.verify(signature, quotes.enrolment_message(key, node, stamp))
        except InvalidSignature as e:
            raise Refusal(403, "EnrolmentInvalid", f"proof of LAS {who} does not verify") from e
        authenticated = is_las(peer)
        if self.require_certificate and not authenticated:
            raise Refusal(
                403,
                "CertificateRequired",
                f"LAS {who}: enrolment needs a client certificate (CN {LAS_CN}) from CAS's CA",
            )
        known = self.keys.get(key)
        if known is None or known.authenticated < authenticated or known.node != node:
            await self.registry.store.write(
                lambda c: c.execute(
                    "INSERT INTO las_keys VALUES (?, ?, ?, ?) ON CONFLICT(key) DO UPDATE SET"
                    " node = excluded.node,"
                    " authenticated = max(authenticated, excluded.authenticated)",
                    (key, node, int(authenticated), time.time()),
                )
            )
            self.keys[key] = LasKey(node, authenticated or bool(known and known.authenticated))
            how = "client certificate" if authenticated else "unauthenticated (simulation)"
            log.info("enrolled LAS %s of node %s: %s", who, node, how)
        return {
            "fingerprint": who,
            "node": node,
            "created": known is None,
            "authenticated": self.keys[key].authenticated,
            "instanceId": self.registry.store.instance_id,
        }

    def _policy(self, name: str) -> document.Policy | None:
        record = self.registry.store.get(name)
        if record is None:
            return None
        parsed = self._policies.get(record.digest)
        if parsed is None:
            if len(self._policies) >= POLICY_CACHE:
                self._policies.clear()
            parsed = self._policies[record.digest] = document.parse(record.policy)
        return parsed

    def attest(self, body: Mapping[str, Any]) -> dict[str, Any]:
        config = body.get("configId")
        if not isinstance(config, str):
            raise Refusal(400, "InvalidField", "configId: a string is required", "configId")
        try:
            policy_name, service_name = release.config_id(config)
            q = quotes.parse(body.get("quote"))
        except (quotes.QuoteError, ValueError) as e:
            raise _bad(e, "configId") from e
        las = quotes.fingerprint(q.las)
        if q.las not in self.keys:
            raise Refusal(
                403, "LasNotEnrolled", f"quote signed by LAS {las}, which this CAS did not enrol"
            )
        try:
            quotes.verify(q)
        except quotes.QuoteError as e:
            raise Refusal(403, "QuoteInvalid", str(e), e.field) from e
        policy = self._policy(policy_name)
        service = policy.service(service_name) if policy else None
        if service is None:
            what = f"policy {policy_name!r}" if policy is None else f"service {config!r}"
            raise Refusal(404, "UnknownConfigId", f"config id {config!r}: no {what} in this CAS")
        if service.measurement != q.measurement:
            raise Refusal(
                403,
                "MeasurementMismatch",
                f"measurement {q.measurement[:16]}… is not the one policy {policy_name!r}"
                f" grants service {service_name!r}",
                "quote.measurement",
            )
        assert policy is not None
        granted = {env: policy.secrets[name] for env, name in service.secrets.items()}
        out = release.Release(
            policy_name, service_name, service.command, dict(service.environment), granted
        )
        try:
            sealed = release.seal(out, q.report_data)
        except release.ReleaseError as e:
            raise Refusal(400, "InvalidField", str(e), "quote.reportData") from e
        log.info(
            "released %s (%d secrets) to measurement %s… via LAS %s of node %s",
            config,
            len(granted),
            q.measurement[:16],
            las,
            q.node,
        )
        return {"configId": config, "algorithm": release.ALGORITHM, "sealed": sealed}


ATTESTATION: web.AppKey[Attestation] = web.AppKey("attestation", Attestation)


async def enrol(request: web.Request) -> web.Response:
    result = await request.app[ATTESTATION].enrol(await _body(request), _peer(request))
    return web.json_response(result, status=201 if result["created"] else 200)


async def attest(request: web.Request) -> web.Response:
    return web.json_response(request.app[ATTESTATION].attest(await _body(request)))


def install(app: web.Application, registry: Registry) -> None:
    """Add the enrolment and attestation endpoints to CAS's enclave-port application."""
    mode = os.environ.get(ENROLMENT_ENV, "open")
    if mode not in ("open", "certificate"):
        raise ValueError(f"{ENROLMENT_ENV}={mode!r}: expected open or certificate")
    state = Attestation(registry, require_certificate=mode == "certificate")
    app[ATTESTATION] = state
    app.on_startup.append(state.load)
    app.router.add_post("/v1/las/enrol", enrol)
    app.router.add_post("/v1/attest", attest)
