"""Which attributes of a live owned object contradict the values its chart was given.

The EqualSpecs condition of a CR lists these, and a non-empty list makes the operator
upgrade the release, which puts the chart's values back. Only fields the chart derives from
the spec are compared; anything the API server or another controller adds is ignored.
Quantities are compared by amount, since the API server rewrites them (``0.5`` -> ``500m``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.quantity import quantity

_CONTAINERS = {CAS: "cas", LAS: "las", SGXPLUGIN: "sgx-plugin"}
CAPACITY_FLAG = "--capacity-sgx-pods="


def _show(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, str):
        return f'"{value}"'
    return json.dumps(value, sort_keys=True)


class _Diff:
    """Collects ``<Kind> <field> is <live>, spec says <wanted>`` messages."""

    def __init__(self, obj: Mapping[str, Any]) -> None:
        self.kind = str(obj.get("kind"))
        self.messages: list[str] = []

    def check(self, field: str, live: Any, wanted: Any) -> None:
        if live != wanted:
            self.messages.append(f"{self.kind} {field} is {_show(live)}, spec says {_show(wanted)}")


def _same_amount(live: Any, wanted: Any) -> bool:
    a, b = quantity(live), quantity(wanted)
    return a == b if a is not None and b is not None else live == wanted


def _resources(diff: _Diff, live: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    for section in ("limits", "requests"):
        have = live.get(section) or {}
        want = wanted.get(section) or {}
        for name in sorted(set(have) | set(want)):
            if not _same_amount(have.get(name), want.get(name)):
                diff.check(f"resources.{section}.{name}", have.get(name), want.get(name))


def _container(kind: Kind, pod: Mapping[str, Any]) -> Mapping[str, Any]:
    containers = [c for c in pod.get("containers") or [] if isinstance(c, Mapping)]
    named = [c for c in containers if c.get("name") == _CONTAINERS[kind]]
    return (named or containers or [{}])[0]


def _port(container: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for port in container.get("ports") or []:
        if port.get("name") == name:
            return dict(port)
    return {}


def _workload(kind: Kind, values: Mapping[str, Any], obj: Mapping[str, Any]) -> list[str]:
    diff = _Diff(obj)
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    container = _container(kind, pod)
    diff.check("image", container.get("image"), values.get("image"))
    diff.check("imagePullPolicy", container.get("imagePullPolicy"), values.get("imagePullPolicy"))
    secrets = [s.get("name") for s in pod.get("imagePullSecrets") or []]
    wanted_secret = values.get("imagePullSecret")
    diff.check("imagePullSecrets", secrets, [wanted_secret] if wanted_secret else [])
    diff.check("nodeSelector", pod.get("nodeSelector") or {}, values.get("nodeSelector") or {})
    diff.check(
        "tolerations",
        _tolerations(pod.get("tolerations")),
        _tolerations(values.get("tolerations")),
    )
    _resources(diff, container.get("resources") or {}, values.get("resources") or {})
    if kind == CAS:
        service = values.get("service") or {}
        for name, key in (("client", "clientPort"), ("enclave", "enclavePort")):
            live = _port(container, name).get("containerPort")
            diff.check(f"container port {name}", live, service.get(key))
        mounts = {m.get("name"): m for m in container.get("volumeMounts") or []}
        wanted_path = (values.get("persistence") or {}).get("mountPath")
        diff.check("database mountPath", (mounts.get("db") or {}).get("mountPath"), wanted_path)
    elif kind == LAS:
        port = _port(container, "attestation") or dict((container.get("ports") or [{}])[0])
        diff.check("hostPort", port.get("hostPort"), values.get("hostPort"))
        diff.check("containerPort", port.get("containerPort"), values.get("hostPort"))
    else:
        argv = [*(container.get("command") or []), *(container.get("args") or [])]
        flags = [a[len(CAPACITY_FLAG) :] for a in argv if str(a).startswith(CAPACITY_FLAG)]
        live_capacity = int(flags[-1]) if flags and flags[-1].isdigit() else None
        diff.check("capacitySGXPods argument", live_capacity, values.get("capacitySGXPods"))
    return diff.messages


def _tolerations(items: Any) -> list[dict[str, Any]]:
    """Order-free and without empty fields (the API server drops them, Equal is the default)."""
    normal = [
        {k: v for k, v in {"operator": "Equal", **t}.items() if v not in (None, "")}
        for t in items or []
    ]
    return sorted(normal, key=lambda t: json.dumps(t, sort_keys=True))


def _service(values: Mapping[str, Any], obj: Mapping[str, Any]) -> list[str]:
    diff = _Diff(obj)
    wanted = values.get("service") or {}
    spec = obj.get("spec") or {}
    kind = wanted.get("type")
    diff.check("type", spec.get("type"), kind)
    ports = {p.get("name"): p for p in spec.get("ports") or []}
    node_ports = wanted.get("nodePorts") or {}
    for name, key in (("client", "clientPort"), ("enclave", "enclavePort")):
        port = ports.get(name) or {}
        diff.check(f"port {name}", port.get("port"), wanted.get(key))
        if kind == "NodePort" and node_ports.get(key) is not None:
            diff.check(f"nodePort {name}", port.get("nodePort"), node_ports[key])
    if kind == "LoadBalancer" and wanted.get("loadBalancerIP"):
        diff.check("loadBalancerIP", spec.get("loadBalancerIP"), wanted["loadBalancerIP"])
    live_annotations = (obj.get("metadata") or {}).get("annotations") or {}
    for key, value in sorted((wanted.get("annotations") or {}).items()):
        diff.check(f"annotation {key}", live_annotations.get(key), value)
    return diff.messages


def _claim(values: Mapping[str, Any], obj: Mapping[str, Any]) -> list[str]:
    diff = _Diff(obj)
    wanted = values.get("persistence") or {}
    spec = obj.get("spec") or {}
    storage_class = wanted.get("storageClass")
    if storage_class is not None:
        want = "" if storage_class == "-" else storage_class
        diff.check("storageClassName", spec.get("storageClassName"), want)
    diff.check(
        "accessModes",
        sorted(spec.get("accessModes") or []),
        sorted(wanted.get("accessModes") or []),
    )
    live_size = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    if not _same_amount(live_size, wanted.get("size")):
        diff.check("size", live_size, wanted.get("size"))
    return diff.messages


def contradictions(kind: Kind, values: Mapping[str, Any], obj: Mapping[str, Any]) -> list[str]:
    """Messages naming each field of ``obj`` that contradicts ``values``; [] when none.

    ``values`` are the chart values of the CR (``values_for``); objects of kinds the chart
    of ``kind`` does not create are not compared.
    """
    object_kind = obj.get("kind")
    if kind == CAS:
        if object_kind == "Deployment":
            return _workload(kind, values, obj)
        if object_kind == "Service":
            return _service(values, obj)
        if object_kind == "PersistentVolumeClaim":
            return _claim(values, obj)
    elif kind in (LAS, SGXPLUGIN) and object_kind == "DaemonSet":
        return _workload(kind, values, obj)
    return []
