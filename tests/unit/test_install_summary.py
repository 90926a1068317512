"""status's rows and check's decision, from CR bodies as the API server returns them."""

from __future__ import annotations

from typing import Any

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, SIGNED_POLICY
from enclave_operator.install.summary import (
    Row,
    describe,
    healthy_value,
    row,
    rows,
    verdict,
)


def cond(type_: str, status: str, message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": "R", "message": message}


HEALTHY_CONDITIONS = [
    cond("IsHealthy", "True", "all owned objects are healthy"),
    cond("DeletionPresent", "False"),
    cond("FinalizerPresent", "True"),
    cond("ReleaseFailed", "False"),
    cond("ReleaseDeployed", "True"),
    cond("daemonset.las-x/OwnedObjectHealthy", "True"),
    cond("daemonset.las-x/OwnedObjectDeletionPresent", "False"),
    cond("daemonset.las-x/EqualSpecs", "True"),
]


def body(
    name: str,
    state: str | None = "HEALTHY",
    conditions: list[dict[str, str]] | None = None,
    namespace: str | None = None,
    generation: int = 1,
    observed: int = 1,
    **status: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "generation": generation}
    if namespace:
        meta["namespace"] = namespace
    st: dict[str, Any] = dict(status)
    if state:
        st |= {"state": state, "observedGeneration": observed}
        st["conditions"] = HEALTHY_CONDITIONS if conditions is None else conditions
    return {"metadata": meta, "status": st} if st else {"metadata": meta}


def test_condition_polarity_follows_the_operators_table():
    assert healthy_value("IsHealthy") == "True"
    assert healthy_value("ReleaseDeployed") == "True"
    assert healthy_value("DeletionPresent") == "False"
    assert healthy_value("ReleaseFailed") == "False"
    assert healthy_value("deployment.cas-x/OwnedObjectDeletionPresent") == "False"
    assert healthy_value("deployment.cas-x/SoleOwner") == "True"


def test_a_healthy_resource_has_no_unmet_condition():
    r = row(LAS, body("x"))
    assert (r.kind, r.namespace, r.name, r.state, r.ready) == ("LAS", None, "x", "HEALTHY", True)
    assert r.unmet == ()
    assert describe(r) == "LAS x: HEALTHY"


def test_unmet_conditions_carry_name_status_and_message_in_order():
    conditions = [
        cond("IsHealthy", "Unknown", "waiting for deployment cas-x"),
        cond("DeletionPresent", "True"),
        cond("ReleaseFailed", "False"),
        cond("deployment.cas-x/EqualSpecs", "False", "image differs"),
    ]
    r = row(CAS, body("x", "PENDING", conditions, namespace="ns"))
    assert [(u.type, u.status, u.message) for u in r.unmet] == [
        ("IsHealthy", "Unknown", "waiting for deployment cas-x"),
        ("DeletionPresent", "True", ""),
        ("deployment.cas-x/EqualSpecs", "False", "image differs"),
    ]
    assert not r.ready
    assert describe(r) == (
        "CAS ns/x: PENDING — IsHealthy=Unknown (waiting for deployment cas-x); "
        "DeletionPresent=True; deployment.cas-x/EqualSpecs=False (image differs)"
    )


def test_describe_shortens_long_lists_and_explains_a_missing_status():
    conditions = [cond(f"c{i}", "False") for i in range(5)]
    assert describe(row(LAS, body("x", "PENDING", conditions))).endswith("c2=False; +2 more")
    assert describe(row(LAS, body("x", state=None))) == (
        "LAS x: no status yet (is the operator running?)"
    )


def test_alerts_are_the_firing_alert_figures_only():
    r = row(
        SGXPLUGIN,
        body(
            "p",
            "UNHEALTHY",
            sgxDeviceAlert=2,
            sgxReplicaAlert=0,
            lasReplicaAlert=-1,
            usedSGXDevices=3,
        ),
    )
    assert dict(r.alerts) == {"sgxDeviceAlert": 2}


def test_devices_per_node_used_of_capacity():
    r = row(
        SGXPLUGIN,
        body(
            "p",
            usedSGXDevicesPerNode={"n2": 0, "n1": 3},
            capacitySGXDevicesPerNode={"n1": 110, "n2": 110, "n3": -1},
        ),
    )
    assert dict(r.devices) == {"n1": "3/110", "n2": "0/110", "n3": "?/?"}
    assert row(LAS, body("x")).devices == {}


def test_stale_or_deleting_healthy_is_not_ready():
    assert not row(CAS, body("x", namespace="n", generation=2, observed=1)).ready
    deleting = body("x", namespace="n")
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    r = row(CAS, deleting)
    assert (r.ready, r.state) == (False, "HEALTHY (deleting)")


def test_rows_are_sorted_by_kind_then_namespace_and_name():
    listed = rows(
        [
            (SGXPLUGIN, body("p")),
            (CAS, body("b", namespace="z")),
            (CAS, body("a", namespace="z")),
            (CAS, body("c", namespace="a")),
            (SIGNED_POLICY, body("pol", state=None, namespace="a")),
        ]
    )
    assert [(r.kind, r.namespace, r.name) for r in listed] == [
        ("SGXPlugin", None, "p"),
        ("CAS", "a", "c"),
        ("CAS", "z", "a"),
        ("CAS", "z", "b"),
        ("SignedPolicy", "a", "pol"),
    ]


def test_the_json_form_of_a_row():
    r = row(CAS, body("x", "PENDING", [cond("IsHealthy", "False", "no")], namespace="n"))
    assert r.as_dict() == {
        "kind": "CAS",
        "namespace": "n",
        "name": "x",
        "state": "PENDING",
        "ready": False,
        "unmetConditions": [{"type": "IsHealthy", "status": "False", "message": "no"}],
        "alerts": {},
        "devices": {},
    }


def ready_row(kind: str, ready: bool) -> Row:
    return Row(kind, None, kind.lower(), "HEALTHY" if ready else "PENDING", ready)


def test_check_passes_only_when_every_service_is_ready():
    v = verdict([ready_row("SGXPlugin", True), ready_row("LAS", True), ready_row("CAS", True)])
    assert (v.ready, v.total, v.ok, v.waiting) == (3, 3, True, ())
    v = verdict([ready_row("SGXPlugin", True), ready_row("LAS", False), ready_row("CAS", True)])
    assert (v.ready, v.total, v.ok) == (2, 3, False)
    assert [r.kind for r in v.waiting] == ["LAS"]


def test_check_ignores_policies_and_fails_on_an_empty_cluster():
    policy = Row("SignedPolicy", "n", "p", "-", False)
    assert verdict([ready_row("CAS", True), policy]).ok
    empty = verdict([policy])
    assert (empty.total, empty.ok) == (0, False)
