"""From a custom resource to its Helm release: the release's name, namespace and values.

Pure functions, so the reconciler and the tests agree on every name without a cluster. The
API server has already applied the CRD defaults, but a missing key (an old object, a test
fixture) gets the same default here, so the chart never sees a half-filled spec.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from enclave_operator.api import cas, common, las
from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.pki import OPERATOR_CLIENT_SECRET, las_client_secret

MAX_RELEASE_NAME = 53
"""Helm's limit; it leaves room for suffixes such as ``-db`` within a 63-character label."""

HASH_LENGTH = 8
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _chart_kind(kind: Kind) -> Kind:
    """Refuse kinds without a chart (the policies), so a typo cannot produce a release."""
    if kind not in (CAS, LAS, SGXPLUGIN):
        raise ValueError(f"{kind.kind} is not deployed by a Helm chart")
    return kind


def release_name(kind: Kind, cr_name: str) -> str:
    """``<kind>-<name>``, shortened with a stable hash when it is no DNS-1123 label of ≤53.

    CR names may be longer and may contain dots; the hash of the original name keeps two
    such names that shorten alike (``a.b`` and ``a-b``) in distinct releases.
    """
    plain = f"{_chart_kind(kind).singular}-{cr_name}"
    if len(plain) <= MAX_RELEASE_NAME and _LABEL.match(plain):
        return plain
    digest = hashlib.sha256(cr_name.encode()).hexdigest()[:HASH_LENGTH]
    label = re.sub(r"[^a-z0-9-]", "-", plain.lower())
    stem = label[: MAX_RELEASE_NAME - HASH_LENGTH - 1].rstrip("-")
    return f"{stem}-{digest}"


def release_namespace(kind: Kind, cr: Mapping[str, Any], operator_namespace: str) -> str:
    """CAS lives beside its CR; the cluster-scoped kinds name a namespace in their spec."""
    if _chart_kind(kind) == CAS:
        return str(cr["metadata"]["namespace"])
    spec = cr.get("spec") or {}
    return str(spec.get("namespace") or operator_namespace)


def _or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _common(spec: Mapping[str, Any], pull_secret: str | None) -> dict[str, Any]:
    return {
        "autoUpdate": bool(_or(spec.get("autoUpdate"), False)),
        "image": _or(spec.get("image"), common.DEFAULT_IMAGE),
        "imagePullPolicy": _or(spec.get("imagePullPolicy"), common.DEFAULT_PULL_POLICY),
        "imagePullSecret": pull_secret,
        "resources": dict(_or(spec.get("resources"), {})),
        "nodeSelector": dict(_or(spec.get("nodeSelector"), {})),
        "tolerations": [dict(t) for t in _or(spec.get("tolerations"), [])],
    }


def _cas(spec: Mapping[str, Any]) -> dict[str, Any]:
    service = spec.get("service") or {}
    node_ports = service.get("nodePorts") or {}
    persistence = spec.get("persistence") or {}
    size = _or(persistence.get("size"), cas.DEFAULT_SIZE)
    ingress = spec.get("ingress") or {}
    return {
        "ingress": {
            "enabled": bool(_or(ingress.get("enabled"), False)),
            "host": ingress.get("host"),
            "className": ingress.get("className"),
            "annotations": dict(_or(ingress.get("annotations"), {})),
        },
        "service": {
            "type": _or(service.get("type"), cas.DEFAULT_SERVICE_TYPE),
            "clientPort": _or(service.get("clientPort"), cas.DEFAULT_CLIENT_PORT),
            "enclavePort": _or(service.get("enclavePort"), cas.DEFAULT_ENCLAVE_PORT),
            "loadBalancerIP": service.get("loadBalancerIP"),
            "nodePorts": {
                "clientPort": node_ports.get("clientPort"),
                "enclavePort": node_ports.get("enclavePort"),
            },
            "annotations": dict(_or(service.get("annotations"), {})),
        },
        "lasEnrolment": _or(spec.get("lasEnrolment"), cas.LAS_ENROLMENT_ANY),
        "persistence": {
            "enabled": bool(_or(persistence.get("enabled"), False)),
            "mountPath": _or(persistence.get("mountPath"), cas.DEFAULT_MOUNT_PATH),
            "storageClass": persistence.get("storageClass"),
            "accessModes": list(_or(persistence.get("accessModes"), cas.DEFAULT_ACCESS_MODES)),
            # A string, because Helm reads numbers as floats and would print 1e+09.
            "size": str(size),
        },
    }


def owner(kind: Kind, cr: Mapping[str, Any]) -> dict[str, str] | None:
    """The CR as the owner the charts write into every object (None before it has a uid):
    owned from the install on, instead of one patch per object after it."""
    meta = cr.get("metadata") or {}
    if not meta.get("uid"):
        return None
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "name": str(meta["name"]),
        "uid": str(meta["uid"]),
    }


def values_for(kind: Kind, cr: Mapping[str, Any], pull_secret: str | None) -> dict[str, Any]:
    """The chart values of ``cr``; ``pull_secret`` is the one registry Secret to use, if any.

    The caller picks the pull secret (the first of ``spec.imagePullSecrets`` that exists)
    because only it can look at the cluster; this module stays pure.
    """
    spec: Mapping[str, Any] = cr.get("spec") or {}
    values = _common(spec, pull_secret)
    values["owner"] = owner(kind, cr)
    if _chart_kind(kind) == CAS:
        values.update(_cas(spec))
    elif kind == LAS:
        values["hostPort"] = _or(spec.get("hostPort"), las.DEFAULT_HOST_PORT)
    else:
        # None: no flag, and each plugin advertises its own Node's allocatable pods.
        values["capacitySGXPods"] = spec.get("capacitySGXPods")
    return values


def client_secrets(cas_name: str) -> list[tuple[str, str]]:
    """The client certificates `enclavectl install` issues from CAS ``cas_name``'s CA, beside
    it, and whose they are: the operator's, and that of the LAS of the same name."""
    las = las_client_secret(release_name(LAS, cas_name))
    return [(OPERATOR_CLIENT_SECRET, "operator client"), (las, "LAS client")]
