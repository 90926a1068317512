"""LAS's HTTP API, plain HTTP on the node's hostPort (simulation; see ``server``).

| method | path | what |
|---|---|---|
| GET | /v1/health | liveness; ``enrolled`` says whether CAS has this node's key |
| GET | /v1/version | service version, node, key fingerprint, CAS and enrolment state |
| POST | /v1/quote | ``{measurement, reportData}`` → ``{quote}`` (format: attestation.quote) |

Every refusal is a 4xx JSON ``{"error": {code, message, field}}``, never a crash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ed25519

from enclave_operator import __version__
from enclave_operator.attestation import quote as quotes

log = logging.getLogger("enclave_operator.las.api")
MAX_BODY = 16 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Node:
    """This LAS: its node name, attestation key and where enrolment stands."""

    name: str
    key: ed25519.Ed25519PrivateKey
    cas: str | None = None
    enrolled: bool = False
    cas_instance: str | None = None
    last_error: str | None = field(default=None)

    @property
    def key_id(self) -> str:
        return quotes.key_id(self.key.public_key())


NODE: web.AppKey[Node] = web.AppKey("node", Node)


class BadRequest(Exception):
    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message, self.field = message, field


def error(status: int, code: str, message: str, field: str = "") -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as e:
        code = "InvalidBody" if e.field == "body" else "InvalidField"
        return error(400, code, e.message, e.field)
    except web.HTTPRequestEntityTooLarge:
        return error(413, "TooLarge", f"request body over {MAX_BODY} bytes", "body")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return error(e.status, e.reason.replace(" ", ""), e.reason)
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        return error(500, "InternalError", "internal error; see the LAS log")


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "enrolled": request.app[NODE].enrolled})


async def version(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return web.json_response(
        {
            "service": "las",
            "version": __version__,
            "node": node.name,
            "attestationKey": quotes.fingerprint(node.key_id),
            "cas": node.cas,
            "enrolled": node.enrolled,
            "casInstanceId": node.cas_instance,
            "enrolmentError": node.last_error,
        }
    )


async def quote(request: web.Request) -> web.Response:
    raw = await request.read()
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise BadRequest(f"body is not UTF-8 JSON: {e}", "body") from e
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", "body")
    data = body.get("reportData", "")
    if not isinstance(data, str):
        raise BadRequest("reportData: base64 text is required", "reportData")
    node = request.app[NODE]
    try:
        report = quotes.decode_report_data(data)
        q = quotes.issue(
            node.key, node.name, quotes.check_measurement(body.get("measurement")), report
        )
    except quotes.QuoteError as e:
        raise BadRequest(str(e), e.field) from e
    return web.json_response({"quote": q.as_dict()})


def application(node: Node) -> web.Application:
    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    app[NODE] = node
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/version", version)
    app.router.add_post("/v1/quote", quote)
    return app
