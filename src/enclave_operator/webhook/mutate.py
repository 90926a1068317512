"""The injection itself: one pod in, a JSON patch (or a refusal) out. Pure and idempotent.

Everything is added only where it is missing (a limit, an env variable, a mount, a volume,
the toleration), so a pod sent again after other webhooks (reinvocationPolicy IfNeeded), or
one that carries its own values, gets nothing twice and keeps what it set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from enclave_operator.quantity import quantity
from enclave_operator.webhook.requests import INJECTED, Ask, Refusal, read
from enclave_operator.webhook.settings import INJECT_LABEL, SGX_RESOURCES, Plugin, Settings

HOST_IP = "ENCLAVE_HOST_IP"
CAS_CA_DIR = "/etc/enclave/cas-ca"
CAS_CA_VOLUME = "enclave-cas-ca"
AESM_VOLUME = "enclave-aesmd"

Json = dict[str, Any]

__all__ = ["Refusal", "Result", "mutate", "selected"]


@dataclass(frozen=True)
class Result:
    patch: list[Json]  # empty: nothing to change
    summary: Json | None  # what the pod now has, also written to annotation enclave.dev/injected


def selected(pod: Mapping[str, Any], namespace: str, settings: Settings) -> bool:
    """The opt-in, checked again here: the configuration's selectors are the first guard."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    return labels.get(INJECT_LABEL) == "true" and namespace not in settings.excluded_namespaces


def _env(settings: Settings, ask: Ask) -> list[Json]:
    env: list[Json] = [
        {"name": HOST_IP, "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "SCONE_LAS_ADDR", "value": f"$({HOST_IP}):{settings.las_port}"},
        {"name": "SCONE_CAS_ADDR", "value": settings.cas_address},
    ]
    if settings.cas_ca_configmap:
        env.append({"name": "SCONE_CAS_CA", "value": f"{CAS_CA_DIR}/ca.crt"})
    if ask.config_id:
        env.append({"name": "SCONE_CONFIG_ID", "value": ask.config_id})
    if settings.simulation:
        env += [{"name": "SCONE_MODE", "value": "SIM"}, {"name": "SGX_MODE", "value": "SIM"}]
    elif settings.aesm:
        env.append({"name": "SGX_AESM_ADDR", "value": "1"})
    return env


def _mounts(settings: Settings) -> list[Json]:
    mounts: list[Json] = []
    if settings.cas_ca_configmap:
        mounts.append({"name": CAS_CA_VOLUME, "mountPath": CAS_CA_DIR, "readOnly": True})
    if settings.aesm and not settings.simulation:
        mounts.append({"name": AESM_VOLUME, "mountPath": settings.aesm_dir})
    return mounts


def _volumes(settings: Settings) -> list[Json]:
    volumes: list[Json] = []
    if settings.cas_ca_configmap:
        source = {"name": settings.cas_ca_configmap, "items": [{"key": "ca.crt", "path": "ca.crt"}]}
        volumes.append({"name": CAS_CA_VOLUME, "configMap": source})
    if settings.aesm and not settings.simulation:
        path = {"path": settings.aesm_dir, "type": "DirectoryOrCreate"}
        volumes.append({"name": AESM_VOLUME, "hostPath": path})
    return volumes


def _resources(c: Json, ask: Ask, settings: Settings) -> None:
    """SGX limits added where missing; a pod's own SGX request that contradicts the
    installation (another plugin, simulation, another EPC amount) is refused."""
    res = c.setdefault("resources", {})
    limits, requests = res.get("limits") or {}, res.get("requests") or {}
    own = SGX_RESOURCES & {*limits, *requests}
    name = c.get("name", "?")
    if settings.simulation and own:
        raise Refusal(
            f"container {name} requests {', '.join(sorted(own))}, but the installation runs in"
            " simulation (no SGX hardware): remove the SGX resources or the inject label"
        )
    if ask.plugin is None:
        return
    if foreign := own - set(ask.amounts):
        raise Refusal(
            f"container {name} requests {', '.join(sorted(foreign))}, which the {ask.plugin.name}"
            f" device plugin does not provide (it provides {', '.join(ask.amounts)})"
        )
    for resource, amount in ask.amounts.items():
        if resource in limits:
            asked = ask.epc if resource == ask.plugin.resource else None
            if asked is not None and quantity(str(limits[resource])) != quantity(asked):
                raise Refusal(
                    f"container {name} sets limit {resource}={limits[resource]}, but annotation"
                    f" enclave.dev/epc asks for {amount}: keep one of the two"
                )
            continue
        limits[resource] = requests.get(resource, amount)  # a limit must equal its request
    res["limits"] = limits


def _container(c: Json, ask: Ask, settings: Settings) -> None:
    _resources(c, ask, settings)
    if not c["resources"]:
        del c["resources"]
    env = c.setdefault("env", [])
    present = {e.get("name") for e in env}
    if settings.simulation and any(
        e.get("name") in ("SCONE_MODE", "SGX_MODE") and e.get("value") == "HW" for e in env
    ):
        raise Refusal(
            f"container {c.get('name', '?')} sets SCONE_MODE or SGX_MODE to HW, but the"
            " installation runs in simulation"
        )
    env += [e for e in _env(settings, ask) if e["name"] not in present]
    if not env:
        del c["env"]
    mounts = c.setdefault("volumeMounts", [])
    taken = {m.get("mountPath") for m in mounts} | {m.get("name") for m in mounts}
    mounts += [m for m in _mounts(settings) if not {m["mountPath"], m["name"]} & taken]
    if not mounts:
        del c["volumeMounts"]


def tolerates(toleration: Mapping[str, Any], key: str) -> bool:
    """Whether an existing toleration already covers the taint ``key``:NoSchedule."""
    if toleration.get("effect") not in (None, "", "NoSchedule"):
        return False
    if toleration.get("operator") == "Exists" and not toleration.get("key"):
        return True
    return bool(toleration.get("key") == key)


def _tolerations(spec: Json, plugin: Plugin | None) -> str | None:
    if plugin is None:
        return None
    tolerations = spec.setdefault("tolerations", [])
    if not any(tolerates(t, plugin.resource) for t in tolerations):
        tolerations.append({"key": plugin.resource, "operator": "Exists", "effect": "NoSchedule"})
    if not tolerations:
        del spec["tolerations"]
    return plugin.resource


def _targets(spec: Json, ask: Ask) -> list[Json]:
    kinds = ["containers", "initContainers"] if ask.init_containers else ["containers"]
    every = [c for kind in kinds for c in spec.get(kind) or []]
    if ask.containers is None:
        return every
    if unknown := ask.containers - {c.get("name") for c in every}:
        raise Refusal(
            f"annotation enclave.dev/containers names {', '.join(sorted(unknown))}, which the"
            " pod does not have" + ("" if ask.init_containers else " (among its containers)")
        )
    return [c for c in every if c.get("name") in ask.containers]


def _summary(
    spec: Json, targets: list[Json], ask: Ask, settings: Settings, tol: str | None
) -> Json:
    def sgx(c: Json) -> dict[str, str]:
        limits = (c.get("resources") or {}).get("limits") or {}
        return {k: str(v) for k, v in sorted(limits.items()) if k in SGX_RESOURCES}

    return {
        "mode": "simulation" if settings.simulation else "sgx",
        "plugin": ask.plugin.name if ask.plugin else None,
        "containers": {c.get("name", "?"): sgx(c) for c in targets},
        "toleration": tol,
        "configId": ask.config_id,
    }


def mutate(
    pod: Mapping[str, Any], namespace: str, settings: Settings, detected: Plugin | None
) -> Result:
    """The JSON patch that gives ``pod`` what it needs; raises Refusal for a pod that asks
    for something invalid or contradictory. A pod outside the opt-in gets an empty patch."""
    if not selected(pod, namespace, settings):
        return Result([], None)
    ask = read(pod, settings, detected)
    spec: Json = copy.deepcopy(dict(pod.get("spec") or {}))
    targets = _targets(spec, ask)
    for c in targets:
        _container(c, ask, settings)
    volumes = spec.setdefault("volumes", [])
    names = {v.get("name") for v in volumes}
    if targets:
        volumes += [v for v in _volumes(settings) if v["name"] not in names]
    if not volumes:
        del spec["volumes"]
    tol = _tolerations(spec, ask.plugin) if targets else None
    summary = _summary(spec, targets, ask, settings, tol)
    patch: list[Json] = []
    before: Mapping[str, Any] = pod.get("spec") or {}
    for kind in ("containers", "initContainers"):
        for i, (old, new) in enumerate(
            zip(before.get(kind) or [], spec.get(kind) or [], strict=True)
        ):
            for part in ("resources", "env", "volumeMounts"):
                if part in new and old.get(part) != new[part]:
                    patch.append(
                        {"op": "add", "path": f"/spec/{kind}/{i}/{part}", "value": new[part]}
                    )
    for part in ("volumes", "tolerations"):
        if part in spec and before.get(part) != spec[part]:
            patch.append({"op": "add", "path": f"/spec/{part}", "value": spec[part]})
    notes = (pod.get("metadata") or {}).get("annotations")
    text = json.dumps(summary, sort_keys=True, separators=(",", ":"))
    if notes is None:
        patch.append({"op": "add", "path": "/metadata/annotations", "value": {INJECTED: text}})
    elif notes.get(INJECTED) != text:
        path = "/metadata/annotations/" + INJECTED.replace("~", "~0").replace("/", "~1")
        patch.append({"op": "add", "path": path, "value": text})
    return Result(patch, summary)
