"""Prometheus metrics: every status figure per CR, its state, and how reconciling goes."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from enclave_operator.figures.cluster import unix

log = logging.getLogger("enclave_operator.metrics")
STATES = ("HEALTHY", "PENDING", "UNHEALTHY")
CR = ("namespace", "name")
FIGURES: dict[str, tuple[str, ...]] = {
    "las": ("desiredNumberScheduled", "numberAvailable", "lasReplicaAlert"),
    "sgxplugin": (
        "capacitySGXDevices",
        "usedSGXDevices",
        "availableSGXDevices",
        "desiredReplicas",
        "readyReplicas",
        "sgxDeviceAlert",
        "sgxReplicaAlert",
    ),
    "cas": (),
}
PER_NODE = ("capacitySGXDevicesPerNode", "usedSGXDevicesPerNode", "availableSGXDevicesPerNode")


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name.replace("SGX", "Sgx")).lower()


class OperatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.state = Gauge(
            "enclave_cr_state",
            "1 for the state the CR is in, 0 for the others",
            ["kind", *CR, "state"],
            registry=r,
        )
        self.figures = {
            (kind, field): Gauge(
                f"enclave_{kind}_{snake(field)}", f"status.{field}", CR, registry=r
            )
            for kind, fields in FIGURES.items()
            for field in fields
        }
        self.per_node = {
            field: Gauge(
                f"enclave_sgxplugin_node_{snake(field.removesuffix('PerNode'))}",
                f"status.{field}[node]",
                [*CR, "node"],
                registry=r,
            )
            for field in PER_NODE
        }
        self.las_node_ready = Gauge(
            "enclave_las_node_ready",
            "1 when the node's LAS pod is ready",
            [*CR, "node"],
            registry=r,
        )
        self.certificate = Gauge(
            "enclave_cas_certificate_not_after_seconds",
            "status.certificateNotAfter: unix time the CAS's TLS certificate expires",
            CR,
            registry=r,
        )
        self.version = Gauge(
            "enclave_version_info",
            "the version the service's pods run",
            ["kind", *CR, "version"],
            registry=r,
        )
        self.duration = Histogram(
            "enclave_reconcile_duration_seconds",
            "one reconcile pass",
            ["kind"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.actions = Counter(
            "enclave_reconcile_actions_total",
            "actions taken",
            ["kind", "action", "result"],
            registry=r,
        )
        self.errors = Counter(
            "enclave_reconcile_errors_total", "passes that raised", ["kind"], registry=r
        )
        self._series: dict[tuple[str, str, str], list[tuple[Gauge, tuple[str, ...]]]] = {}

    def serve(self, port: int, address: str = "0.0.0.0") -> None:
        try:
            start_http_server(port, address, registry=self.registry)
        except OSError as e:
            log.warning("metrics not served on %s:%d: %s", address, port, e)

    def observe_cr(
        self, kind: str, namespace: str, name: str, state: str, status: Mapping[str, Any]
    ) -> None:
        """Set every series of this CR, dropping those that no longer apply (a node gone)."""
        key = (kind, namespace, name)
        cr = (namespace, name)
        series: list[tuple[Gauge, tuple[str, ...]]] = []

        def put(gauge: Gauge, labels: tuple[str, ...], value: float) -> None:
            gauge.labels(*labels).set(value)
            series.append((gauge, labels))

        for s in STATES:
            put(self.state, (kind, *cr, s), 1.0 if s == state else 0.0)
        for field in FIGURES.get(kind, ()):
            if isinstance(status.get(field), int):
                put(self.figures[(kind, field)], cr, status[field])
        for field in PER_NODE:
            for node, value in (status.get(field) or {}).items():
                put(self.per_node[field], (*cr, node), value)
        if kind == "las":
            for node, detail in (status.get("nodes") or {}).items():
                put(self.las_node_ready, (*cr, node), 1.0 if detail.get("ready") else 0.0)
        if status.get("version"):
            put(self.version, (kind, *cr, status["version"]), 1.0)
        if kind == "cas" and status.get("certificateNotAfter"):
            put(self.certificate, cr, unix(status["certificateNotAfter"]))
        for gauge, labels in self._series.get(key, []):
            if (gauge, labels) not in series:
                gauge.remove(*labels)
        self._series[key] = series

    def forget(self, kind: str, namespace: str, name: str) -> None:
        for gauge, labels in self._series.pop((kind, namespace, name), []):
            gauge.remove(*labels)
