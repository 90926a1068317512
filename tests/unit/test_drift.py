"""contradictions: live owned objects compared with the chart values of their CR."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, SIGNED_POLICY
from enclave_operator.charts.drift import contradictions
from enclave_operator.charts.values import values_for

CAS_VALUES = values_for(
    CAS,
    {
        "spec": {
            "image": "cas:1",
            "resources": {"limits": {"memory": "512Mi", "cpu": "0.5"}, "requests": {"cpu": 1}},
            "nodeSelector": {"zone": "a"},
            "service": {
                "type": "NodePort",
                "nodePorts": {"clientPort": 30001},
                "annotations": {"a": "1"},
            },
            "persistence": {"enabled": True, "storageClass": "fast", "size": "1Gi"},
        }
    },
    "regcred",
)
LAS_VALUES = values_for(LAS, {"spec": {"image": "las:1", "hostPort": 4000}}, None)
PLUGIN_VALUES = values_for(SGXPLUGIN, {"spec": {"image": "p:1", "capacitySGXPods": 20}}, None)


def workload(kind: str, container: dict[str, Any], **pod: Any) -> dict[str, Any]:
    return {"kind": kind, "spec": {"template": {"spec": {"containers": [container], **pod}}}}


def cas_deployment_container() -> dict[str, Any]:
    return {
        "name": "cas",
        "image": "cas:1",
        "imagePullPolicy": "Always",
        # as the API server writes them back: normalized quantities
        "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}, "requests": {"cpu": "1"}},
        "ports": [
            {"name": "client", "containerPort": 8081, "protocol": "TCP"},
            {"name": "enclave", "containerPort": 18765, "protocol": "TCP"},
        ],
        "volumeMounts": [{"name": "db", "mountPath": "/etc/cas/db"}],
    }


def cas_deployment() -> dict[str, Any]:
    return workload(
        "Deployment",
        cas_deployment_container(),
        imagePullSecrets=[{"name": "regcred"}],
        nodeSelector={"zone": "a"},
    )


def cas_service() -> dict[str, Any]:
    return {
        "kind": "Service",
        "metadata": {"annotations": {"a": "1", "added-by-someone": "x"}},
        "spec": {
            "type": "NodePort",
            "ports": [
                {"name": "client", "port": 8081, "nodePort": 30001},
                {"name": "enclave", "port": 18765, "nodePort": 31234},
            ],
        },
    }


def cas_claim() -> dict[str, Any]:
    return {
        "kind": "PersistentVolumeClaim",
        "spec": {
            "storageClassName": "fast",
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "1024Mi"}},
        },
    }


def las_daemonset() -> dict[str, Any]:
    container = {
        "name": "las",
        "image": "las:1",
        "imagePullPolicy": "Always",
        "ports": [{"name": "attestation", "containerPort": 4000, "hostPort": 4000}],
    }
    return workload("DaemonSet", container)


def plugin_daemonset() -> dict[str, Any]:
    container = {
        "name": "sgx-plugin",
        "image": "p:1",
        "imagePullPolicy": "Always",
        "command": ["enclavectl", "service", "sgx-plugin", "--capacity-sgx-pods=20"],
    }
    return workload("DaemonSet", container)


DROP = object()
POD = ("spec", "template", "spec")
C = (*POD, "containers", 0)


def put(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    """Set (or with DROP delete) the field at ``path``, as a hand edit of the live object."""
    for key in path[:-1]:
        obj = obj[key]
    if value is DROP:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


SIDECAR = [{"name": "sidecar", "image": "s"}, cas_deployment_container()]
R = (*C, "resources")
SVC = ("spec", "ports")
CAPACITY = "capacitySGXPods argument"

# (path edited by hand, new value, expected (field, live, wanted) of each message)
CAS_DEPLOYMENT_CASES = [
    ((*C, "image"), "cas:2", [("image", '"cas:2"', '"cas:1"')]),
    ((*C, "imagePullPolicy"), "Never", [("imagePullPolicy", '"Never"', '"Always"')]),
    ((*POD, "imagePullSecrets"), [{"name": "x"}], [("imagePullSecrets", '["x"]', '["regcred"]')]),
    ((*POD, "imagePullSecrets"), DROP, [("imagePullSecrets", "[]", '["regcred"]')]),
    ((*POD, "nodeSelector"), {"zone": "b"}, [("nodeSelector", '{"zone": "b"}', '{"zone": "a"}')]),
    ((*R, "limits", "memory"), "1Gi", [("resources.limits.memory", '"1Gi"', '"512Mi"')]),
    ((*R, "limits", "cpu"), DROP, [("resources.limits.cpu", "unset", '"0.5"')]),
    ((*R, "requests", "memory"), "1Mi", [("resources.requests.memory", '"1Mi"', "unset")]),
    ((*R, "requests", "cpu"), "1000m", []),  # the same amount
    ((*C, "ports", 1, "containerPort"), 1, [("container port enclave", "1", "18765")]),
    ((*C, "volumeMounts", 0, "mountPath"), "/x", [("database mountPath", '"/x"', '"/etc/cas/db"')]),
    ((*POD, "containers"), SIDECAR, []),  # the container is found by its name
]

CAS_SERVICE_CASES = [
    (("spec", "type"), "ClusterIP", [("type", '"ClusterIP"', '"NodePort"')]),
    ((*SVC, 0, "port"), 9999, [("port client", "9999", "8081")]),
    ((*SVC, 0, "nodePort"), 30002, [("nodePort client", "30002", "30001")]),
    ((*SVC, 1, "nodePort"), 32000, []),  # not fixed by the spec
    ((*SVC, 1), DROP, [("port enclave", "unset", "18765")]),
    (("metadata", "annotations", "a"), "2", [("annotation a", '"2"', '"1"')]),
    (("metadata",), {}, [("annotation a", "unset", '"1"')]),
]

CAS_CLAIM_CASES = [
    (("spec", "storageClassName"), "slow", [("storageClassName", '"slow"', '"fast"')]),
    (
        ("spec", "accessModes"),
        ["ReadWriteMany"],
        [("accessModes", '["ReadWriteMany"]', '["ReadWriteOnce"]')],
    ),
    (("spec", "resources", "requests", "storage"), "2Gi", [("size", '"2Gi"', '"1Gi"')]),
]

LAS_CASES = [
    ((*C, "image"), "x:2", [("image", '"x:2"', '"las:1"')]),
    ((*C, "ports", 0, "hostPort"), 5000, [("hostPort", "5000", "4000")]),
    ((*C, "ports", 0, "containerPort"), 5000, [("containerPort", "5000", "4000")]),
    ((*C, "ports", 0, "name"), DROP, []),  # then the first port is the one
    ((*C, "ports"), DROP, [("hostPort", "unset", "4000"), ("containerPort", "unset", "4000")]),
    ((*POD, "nodeSelector"), {"a": "b"}, [("nodeSelector", '{"a": "b"}', "{}")]),
]

PLUGIN_CASES = [
    ((*C, "command", 3), "--capacity-sgx-pods=5", [(CAPACITY, "5", "20")]),
    ((*C, "command", 3), "--capacity-sgx-pods=x", [(CAPACITY, "unset", "20")]),
    ((*C, "command"), ["enclavectl"], [(CAPACITY, "unset", "20")]),
    ((*C, "args"), ["--capacity-sgx-pods=20"], []),
    (
        (*POD, "containers"),
        [],
        [
            ("image", "unset", '"p:1"'),
            ("imagePullPolicy", "unset", '"Always"'),
            (CAPACITY, "unset", "20"),
        ],
    ),
]

TABLE = [
    *[(CAS, CAS_VALUES, cas_deployment, *case) for case in CAS_DEPLOYMENT_CASES],
    *[(CAS, CAS_VALUES, cas_service, *case) for case in CAS_SERVICE_CASES],
    *[(CAS, CAS_VALUES, cas_claim, *case) for case in CAS_CLAIM_CASES],
    *[(LAS, LAS_VALUES, las_daemonset, *case) for case in LAS_CASES],
    *[(SGXPLUGIN, PLUGIN_VALUES, plugin_daemonset, *case) for case in PLUGIN_CASES],
]


@pytest.mark.parametrize(
    ("kind", "values", "make", "path", "value", "expected"),
    [pytest.param(*row, id=f"{row[2].__name__}:{'.'.join(map(str, row[3]))}") for row in TABLE],
)
def test_contradictions(kind, values, make, path, value, expected):
    live = make()
    put(live, path, value)
    messages = [f"{live['kind']} {field} is {a}, spec says {b}" for field, a, b in expected]
    assert contradictions(kind, values, live) == messages


@pytest.mark.parametrize(
    ("kind", "values", "make"),
    [
        (CAS, CAS_VALUES, cas_deployment),
        (CAS, CAS_VALUES, cas_service),
        (CAS, CAS_VALUES, cas_claim),
        (LAS, LAS_VALUES, las_daemonset),
        (SGXPLUGIN, PLUGIN_VALUES, plugin_daemonset),
    ],
)
def test_matching_objects_have_no_contradictions(kind, values, make):
    assert contradictions(kind, values, make()) == []


def test_load_balancer_ip_compared_only_when_wanted():
    values = copy.deepcopy(CAS_VALUES)
    values["service"].update(type="LoadBalancer", loadBalancerIP="10.0.0.1")
    live = cas_service()
    live["spec"].update(type="LoadBalancer", loadBalancerIP="10.0.0.2")
    assert contradictions(CAS, values, live) == [
        'Service loadBalancerIP is "10.0.0.2", spec says "10.0.0.1"'
    ]
    values["service"]["loadBalancerIP"] = None
    assert contradictions(CAS, values, live) == []


def test_node_ports_ignored_unless_node_port_type():
    values = copy.deepcopy(CAS_VALUES)
    values["service"]["type"] = "LoadBalancer"
    live = cas_service()
    live["spec"]["type"] = "LoadBalancer"
    live["spec"]["ports"][0]["nodePort"] = 31111
    assert contradictions(CAS, values, live) == []


@pytest.mark.parametrize(
    ("storage_class", "live", "expected"),
    [
        (None, "standard", []),
        ("-", "", []),
        ("-", None, ['PersistentVolumeClaim storageClassName is unset, spec says ""']),
        ("-", "standard", ['PersistentVolumeClaim storageClassName is "standard", spec says ""']),
    ],
)
def test_claim_storage_class_rules(storage_class, live, expected):
    values = copy.deepcopy(CAS_VALUES)
    values["persistence"]["storageClass"] = storage_class
    claim = cas_claim()
    claim["spec"]["storageClassName"] = live
    assert contradictions(CAS, values, claim) == expected


def test_access_modes_compare_as_a_set():
    values = copy.deepcopy(CAS_VALUES)
    values["persistence"]["accessModes"] = ["ReadOnlyMany", "ReadWriteOnce"]
    claim = cas_claim()
    claim["spec"]["accessModes"] = ["ReadWriteOnce", "ReadOnlyMany"]
    assert contradictions(CAS, values, claim) == []


@pytest.mark.parametrize(
    ("kind", "values", "body"),
    [
        (CAS, CAS_VALUES, {"kind": "ConfigMap", "data": {"x": "y"}}),
        (CAS, CAS_VALUES, {"kind": "DaemonSet", "spec": {}}),
        (LAS, LAS_VALUES, cas_deployment()),
        (LAS, LAS_VALUES, cas_service()),
        (SIGNED_POLICY, {}, las_daemonset()),
    ],
)
def test_objects_the_chart_does_not_create_have_no_contradictions(kind, values, body):
    assert contradictions(kind, values, body) == []


def test_tolerations_compare_without_order_or_defaults():
    from enclave_operator.api.kinds import LAS
    from enclave_operator.charts.drift import contradictions

    wanted = {
        "tolerations": [
            {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "dedicated", "value": "sgx"},
        ]
    }
    live = {
        "kind": "DaemonSet",
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "las"}],
                    "tolerations": [
                        {"key": "dedicated", "operator": "Equal", "value": "sgx"},
                        {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"},
                    ],
                }
            }
        },
    }
    assert not [m for m in contradictions(LAS, wanted, live) if "tolerations" in m]
    live["spec"]["template"]["spec"]["tolerations"] = []
    assert [m for m in contradictions(LAS, wanted, live) if "tolerations" in m]
