"""The CAS client API over HTTP: JSON in, JSON out, versioned paths, every error a 4xx with a
reason and the field it concerns.

| method | path | what |
|---|---|---|
| GET | /v1/health | liveness and readiness |
| GET | /v1/version | service version, instance id (new whenever the store starts empty) |
| GET | /v1/encryption-key | the X25519 key that encrypted policies must be sealed to |
| POST | /v1/policies/signed | register a signed policy |
| POST | /v1/policies/encrypted | register an encrypted policy |
| GET | /v1/policies/{name} | a policy's metadata: name, kind, digest, signers |
| DELETE | /v1/policies/{name} | delete: an owner's signed request, or the operator (mutual TLS) |
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from enclave_operator import __version__
from enclave_operator.services.cas import attestation
from enclave_operator.services.cas.identity import is_operator
from enclave_operator.services.cas.registry import Refusal, Registry

log = logging.getLogger("enclave_operator.cas.api")
MAX_BODY = 1024 * 1024
REGISTRY: web.AppKey[Registry] = web.AppKey("registry", Registry)
EPHEMERAL: web.AppKey[bool] = web.AppKey("ephemeral", bool)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str, field: str = "") -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refusals and aiohttp's own HTTP errors become JSON; anything else is a bug, logged and
    answered with 500 without detail (a secret might be in the exception)."""
    try:
        return await handler(request)
    except Refusal as r:
        return error(r.status, r.code, r.message, r.field)
    except web.HTTPRequestEntityTooLarge:
        return error(413, "TooLarge", f"request body over {MAX_BODY} bytes", "body")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error(e.status, e.reason.replace(" ", ""), e.reason)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "InternalError", "internal error; see the CAS log")


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise Refusal(400, "InvalidBody", f"body is not UTF-8 (byte {e.start})", "body") from e
    try:
        body = json.loads(text)
    except ValueError as e:
        raise Refusal(400, "InvalidBody", f"body is not JSON: {e}", "body") from e
    except RecursionError as e:  # [[[[…: json's decoder recurses
        raise Refusal(400, "InvalidBody", "body is nested too deeply", "body") from e
    if not isinstance(body, dict):
        raise Refusal(400, "InvalidBody", "body must be a JSON object", "body")
    return body


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def version(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    return web.json_response(
        {
            "service": "cas",
            "version": __version__,
            "instanceId": registry.store.instance_id,
            "persistent": not request.app[EPHEMERAL],
            "policies": registry.store.count(),
        }
    )


async def encryption_key(request: web.Request) -> web.Response:
    key = request.app[REGISTRY].public_key
    return web.json_response({"algorithm": "X25519-HKDF-SHA256-AES-256-GCM", "key": key})


async def register_signed(request: web.Request) -> web.Response:
    created, meta = await request.app[REGISTRY].register_signed(await json_body(request))
    return web.json_response({**meta, "created": created}, status=201 if created else 200)


async def register_encrypted(request: web.Request) -> web.Response:
    created, meta = await request.app[REGISTRY].register_encrypted(await json_body(request))
    return web.json_response({**meta, "created": created}, status=201 if created else 200)


async def get_policy(request: web.Request) -> web.Response:
    return web.json_response(request.app[REGISTRY].get(request.match_info["name"]))


async def delete_policy(request: web.Request) -> web.Response:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    peer = ssl_object.getpeercert(binary_form=True) if ssl_object else None
    name = request.match_info["name"]
    await request.app[REGISTRY].delete(name, request.path, is_operator(peer), request.headers)
    return web.json_response({"name": name, "deleted": True})


def client_app(registry: Registry, ephemeral: bool) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    app[REGISTRY] = registry
    app[EPHEMERAL] = ephemeral
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/version", version)
    app.router.add_get("/v1/encryption-key", encryption_key)
    app.router.add_post("/v1/policies/signed", register_signed)
    app.router.add_post("/v1/policies/encrypted", register_encrypted)
    app.router.add_get("/v1/policies/{name}", get_policy)
    app.router.add_delete("/v1/policies/{name}", delete_policy)
    return app


def enclave_app(registry: Registry, ephemeral: bool) -> web.Application:
    """The port LAS and attested workloads use: enrolment and attestation (attestation.py)."""
    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    app[REGISTRY] = registry
    app[EPHEMERAL] = ephemeral
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/version", version)
    attestation.install(app, registry)
    return app
