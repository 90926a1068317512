"""The API server calls a mutating admission webhook served on loopback."""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from enclave_operator.devcluster.pki import CertificateAuthority

PATCH = [{"op": "add", "path": "/metadata/labels", "value": {"mutated-by": "test-webhook"}}]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps(
            {
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {
                    "uid": review["request"]["uid"],
                    "allowed": True,
                    "patchType": "JSONPatch",
                    "patch": base64.b64encode(json.dumps(PATCH).encode()).decode(),
                },
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook_server(tmp_path: Path) -> Iterator[tuple[int, bytes]]:
    ca = CertificateAuthority(tmp_path)
    pair = ca.issue("webhook", "webhook", hosts=("127.0.0.1",))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pair.cert, pair.key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], ca.pair.cert.read_bytes()
    server.shutdown()


def test_mutating_webhook_on_loopback(api_client, namespace, webhook_server):
    port, ca_pem = webhook_server
    admission = client.AdmissionregistrationV1Api(api_client)
    name = f"{namespace}.test.enclave.dev"
    admission.create_mutating_webhook_configuration(
        {
            "metadata": {"name": name},
            "webhooks": [
                {
                    "name": name,
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{port}/mutate",
                        "caBundle": base64.b64encode(ca_pem).decode(),
                    },
                    "rules": [
                        {
                            "operations": ["CREATE"],
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "resources": ["configmaps"],
                        }
                    ],
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": namespace}
                    },
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                    "failurePolicy": "Fail",
                }
            ],
        }
    )
    try:
        core = client.CoreV1Api(api_client)
        # The configuration takes effect once the API server's informer has seen it.
        for attempt in range(50):
            cm = core.create_namespaced_config_map(
                namespace, {"metadata": {"name": f"cm-{attempt}"}}
            )
            if (cm.metadata.labels or {}).get("mutated-by") == "test-webhook":
                break
            threading.Event().wait(0.2)
        assert cm.metadata.labels == {"mutated-by": "test-webhook"}
    finally:
        admission.delete_mutating_webhook_configuration(name)
