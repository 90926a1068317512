"""The MutatingWebhookConfiguration: which pods the API server sends, where, and on failure what.

Pure. In-cluster the chart renders the same object (templates/webhook.yaml) pointing at the
operator's Service and the operator only fills in caBundle; a local operator (dev cluster)
creates it itself, pointing at its loopback URL, and deletes it when it stops.
"""

from __future__ import annotations

import base64
from typing import Any

from enclave_operator.webhook.settings import INJECT_LABEL, Settings

WEBHOOK_NAME = "inject.enclave.dev"
PATH = "/mutate"
PATH_PREFIX = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"


def webhook(settings: Settings, operator_namespace: str, client: dict[str, Any]) -> dict[str, Any]:
    """One webhook entry; `client` is its clientConfig (a url or a service, and caBundle)."""
    excluded = sorted({*settings.excluded_namespaces, operator_namespace})
    return {
        "name": WEBHOOK_NAME,
        "clientConfig": client,
        "rules": [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ],
        # The opt-in: only pods labelled so are ever sent; the operator's own namespace and
        # kube-system never are, so a broken webhook cannot block the pods that would fix it.
        "objectSelector": {"matchLabels": {INJECT_LABEL: "true"}},
        "namespaceSelector": {
            "matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": excluded}
            ]
        },
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": settings.failure_policy,
        "matchPolicy": "Equivalent",
        "reinvocationPolicy": "IfNeeded",
        "timeoutSeconds": settings.timeout_seconds,
    }


def by_url(
    settings: Settings, operator_namespace: str, url: str, ca_bundle: bytes
) -> dict[str, Any]:
    """The whole configuration of a local operator, reached at `url` (https, loopback)."""
    client = {"url": url, "caBundle": base64.b64encode(ca_bundle).decode()}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {
            "name": settings.configuration,
            "labels": {
                "app.kubernetes.io/name": "enclave-operator",
                "app.kubernetes.io/component": "webhook",
                "app.kubernetes.io/managed-by": "enclave-operator",
            },
        },
        "webhooks": [webhook(settings, operator_namespace, client)],
    }


def ca_bundle_patch(ca_bundle: bytes) -> dict[str, Any]:
    """A strategic merge patch (webhooks merge by name) that sets only caBundle, leaving the
    rest of the chart's object to helm."""
    bundle = base64.b64encode(ca_bundle).decode()
    return {"webhooks": [{"name": WEBHOOK_NAME, "clientConfig": {"caBundle": bundle}}]}


def current_ca_bundle(configuration: dict[str, Any]) -> bytes | None:
    for hook in configuration.get("webhooks") or []:
        if hook.get("name") == WEBHOOK_NAME:
            raw = (hook.get("clientConfig") or {}).get("caBundle")
            return base64.b64decode(raw) if raw else None
    return None
