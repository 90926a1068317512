"""The HTTPS endpoint the API server calls: AdmissionReview in, a JSON patch or a denial out.

It runs on a thread of its own with its own event loop, so that admission latency does not
wait for the operator's reconciles, watches or helm processes. Whatever the input, the answer
is an AdmissionReview with HTTP 200: a malformed review or an unexpected error is a denial with
a message (the pod asked for SGX; it must not start without it), never an HTTP 500.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from aiohttp import web

from enclave_operator.pki import load_chain
from enclave_operator.webhook.configuration import PATH
from enclave_operator.webhook.mutate import Refusal, mutate
from enclave_operator.webhook.settings import Plugin, Settings

log = logging.getLogger(__name__)


class Admission:
    """The review logic; settings and the detected plugin are swapped in by the runner."""

    def __init__(
        self, settings: Settings, detected: Plugin | None, on_admitted: Callable[[str], None]
    ) -> None:
        self.settings, self.detected, self.on_admitted = settings, detected, on_admitted
        self.counts: Counter[str] = Counter()

    def review(self, raw: bytes) -> dict[str, Any]:
        uid = ""
        try:
            request = json.loads(raw)["request"]
            uid = str(request["uid"])
            pod, namespace = request["object"], str(request.get("namespace") or "")
            if not isinstance(pod, dict):
                raise TypeError("object is not a pod")
        except (ValueError, KeyError, TypeError) as e:
            self.counts["malformed"] += 1
            return _answer(uid, allowed=False, code=400, message=f"malformed AdmissionReview: {e}")
        try:
            result = mutate(
                pod,
                namespace or pod.get("metadata", {}).get("namespace", ""),
                self.settings,
                self.detected,
            )
        except Refusal as e:
            self.counts["denied"] += 1
            return _answer(uid, allowed=False, code=400, message=str(e))
        except Exception as e:  # a bug must deny the pod, never admit it without SGX
            log.exception("webhook: mutating pod failed")
            self.counts["error"] += 1
            return _answer(uid, allowed=False, code=500, message=f"enclave webhook error: {e!r}")
        self.counts["patched" if result.patch else "unchanged"] += 1
        if result.summary is not None and not request.get("dryRun"):
            self.on_admitted(namespace)
        return _answer(uid, allowed=True, patch=result.patch)


def _answer(
    uid: str,
    *,
    allowed: bool,
    code: int = 200,
    message: str = "",
    patch: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": code, "message": message}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}


class Server:
    """aiohttp over TLS on its own thread; ``load`` swaps the certificate for new handshakes
    (an SSLContext reads load_cert_chain's result at each handshake), so rotation drops no
    connection and needs no restart."""

    def __init__(self, admission: Admission, host: str, port: int) -> None:
        self.admission, self.host, self.port = admission, host, port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="webhook")
        self._lock = threading.Lock()
        self._loaded: tuple[bytes, bytes] | None = None

    def load(self, cert: bytes, key: bytes) -> None:
        """Each tick hands the current material; only a change is loaded."""
        with self._lock:
            if self._loaded != (cert, key):
                load_chain(self.context, cert, key)
                self._loaded = (cert, key)

    async def _handle(self, request: web.Request) -> web.Response:
        return web.json_response(self.admission.review(await request.read()))

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "requests": dict(self.admission.counts)})

    async def _start(self) -> int:
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_post(PATH, self._handle)
        app.router.add_get("/healthz", self._health)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.context)
        await site.start()
        server = site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else self.port

    def start(self) -> int:
        """Serve (a certificate must be loaded first); the port actually bound."""
        self._thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(30)
        return self.port

    def stop(self) -> None:
        """Close the listener and the thread; a second call does nothing."""
        runner, self._runner = self._runner, None
        if runner is None or not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(runner.cleanup(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
