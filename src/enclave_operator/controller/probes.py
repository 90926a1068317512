"""One HTTP port for /metrics, /healthz and /readyz, served on its own thread (prometheus
client's threading WSGI server), so probes answer even while the event loop is blocked."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from wsgiref.simple_server import make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler

log = logging.getLogger("enclave_operator.metrics")
Probe = Callable[[], tuple[bool, str]]


def app(registry: CollectorRegistry, probes: Mapping[str, Probe]) -> Callable[..., Iterable[bytes]]:
    metrics = make_wsgi_app(registry)

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        probe = probes.get(environ.get("PATH_INFO", ""))
        if probe is None:
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        ok, why = probe()
        status = "200 OK" if ok else "503 Service Unavailable"
        start_response(status, [("Content-Type", "text/plain; charset=utf-8")])
        return [why.encode() + b"\n"]

    return serve


def serve(
    registry: CollectorRegistry, port: int, probes: Mapping[str, Probe], address: str = "0.0.0.0"
) -> int | None:
    """Start serving; the port bound, or None when it cannot be (logged, not fatal)."""
    try:
        httpd = make_server(
            address, port, app(registry, probes), ThreadingWSGIServer, handler_class=_SilentHandler
        )
    except OSError as e:
        log.warning("metrics not served on %s:%d: %s", address, port, e)
        return None
    threading.Thread(target=httpd.serve_forever, daemon=True, name="metrics").start()
    return int(httpd.server_port)
