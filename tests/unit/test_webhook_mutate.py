"""The injection as a pure function: what a selected pod gets per plugin, what it keeps, what is
refused, and that a second pass (reinvocation) changes nothing."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from enclave_operator.webhook.mutate import mutate, tolerates
from enclave_operator.webhook.requests import INJECTED, Refusal
from enclave_operator.webhook.settings import BY_NAME, Settings

INTEL, AZURE, ALIBABA, ENCLAVE = (BY_NAME[n] for n in ("intel", "azure", "alibaba", "enclave"))
LABEL = {"enclave.dev/inject": "true"}


def pod(*containers: dict[str, Any], annotations: dict[str, str] | None = None, **spec: Any):
    meta: dict[str, Any] = {"name": "p", "labels": dict(LABEL)}
    if annotations is not None:
        meta["annotations"] = annotations
    return {"metadata": meta, "spec": {"containers": list(containers or [{"name": "app"}]), **spec}}


def apply(obj: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """JSON patch "add" onto object members: all the webhook emits."""
    out = copy.deepcopy(obj)
    for op in patch:
        assert op["op"] == "add"
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in op["path"][1:].split("/")
        ]
        target: Any = out
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        assert isinstance(target, dict), op
        target[last] = op["value"]
    return out


def run(p: dict[str, Any], settings: Settings | None = None, plugin=INTEL, ns: str = "apps"):
    result = mutate(p, ns, settings or Settings(), plugin)
    after = apply(p, result.patch)
    again = mutate(after, ns, settings or Settings(), plugin)
    assert again.patch == [], "a second pass (reinvocation) must change nothing"
    return after, result


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def test_unlabelled_pod_and_excluded_namespace_are_untouched():
    plain = {"metadata": {"name": "p", "labels": {"enclave.dev/inject": "false"}}, "spec": {}}
    assert mutate(plain, "apps", Settings(), INTEL).patch == []
    assert mutate(pod(), "kube-system", Settings(), INTEL).patch == []


def test_intel_pod_gets_limits_toleration_env_and_ca():
    after, result = run(pod({"name": "app"}, {"name": "side"}))
    spec = after["spec"]
    for c in spec["containers"]:
        assert c["resources"]["limits"] == {
            "sgx.intel.com/epc": "10Mi",
            "sgx.intel.com/enclave": "1",
            "sgx.intel.com/provision": "1",
        }
        e = env(c)
        assert e["ENCLAVE_HOST_IP"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
        assert e["SCONE_LAS_ADDR"] == "$(ENCLAVE_HOST_IP):18766"
        assert e["SCONE_CAS_ADDR"] == "cas-enclave.enclave-system.svc:18765"
        assert e["SCONE_CAS_CA"] == "/etc/enclave/cas-ca/ca.crt"
        assert "SCONE_MODE" not in e
        assert "SGX_AESM_ADDR" not in e
        assert c["volumeMounts"] == [
            {"name": "enclave-cas-ca", "mountPath": "/etc/enclave/cas-ca", "readOnly": True}
        ]
    assert spec["tolerations"] == [
        {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"}
    ]
    assert spec["volumes"][0]["configMap"]["name"] == "enclave-cas-ca"
    summary = json.loads(after["metadata"]["annotations"][INJECTED])
    assert summary == result.summary
    assert summary["plugin"] == "intel"
    assert summary["mode"] == "sgx"


@pytest.mark.parametrize(
    ("plugin", "limits"),
    [
        (AZURE, {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "10"}),
        (ALIBABA, {"alibabacloud.com/sgx_epc_MiB": "10"}),
        (ENCLAVE, {"sgx.k8s.io/sgx": "1"}),
    ],
)
def test_other_plugins(plugin, limits):
    after, _ = run(pod(), plugin=plugin)
    assert after["spec"]["containers"][0]["resources"]["limits"] == limits
    assert after["spec"]["tolerations"][0]["key"] == plugin.resource


def test_configured_amounts_replace_the_defaults():
    settings = Settings(amounts={"intel": {"sgx.intel.com/epc": "32Mi"}})
    after, _ = run(pod(), settings)
    limits = after["spec"]["containers"][0]["resources"]["limits"]
    assert limits["sgx.intel.com/epc"] == "32Mi"
    assert limits["sgx.intel.com/enclave"] == "1"


def test_epc_annotation_in_each_plugins_unit():
    after, _ = run(pod(annotations={"enclave.dev/epc": "64Mi"}), plugin=AZURE)
    assert after["spec"]["containers"][0]["resources"]["limits"] == {
        "kubernetes.azure.com/sgx_epc_mem_in_MiB": "64"
    }
    after, _ = run(pod(annotations={"enclave.dev/epc": "64Mi"}))
    assert after["spec"]["containers"][0]["resources"]["limits"]["sgx.intel.com/epc"] == "64Mi"


def test_own_limits_and_requests_are_kept():
    own = {"name": "app", "resources": {"limits": {"sgx.intel.com/epc": "64Mi", "cpu": "1"}}}
    req = {"name": "b", "resources": {"requests": {"sgx.intel.com/enclave": "2"}}}
    after, _ = run(pod(own, req))
    a, b = after["spec"]["containers"]
    assert a["resources"]["limits"]["sgx.intel.com/epc"] == "64Mi"
    assert a["resources"]["limits"]["cpu"] == "1"
    assert b["resources"]["limits"]["sgx.intel.com/enclave"] == "2", "a limit equals its request"


def test_own_env_is_kept():
    c = {"name": "app", "env": [{"name": "SCONE_CAS_ADDR", "value": "cas.example:18765"}]}
    after, _ = run(pod(c))
    names = [e["name"] for e in after["spec"]["containers"][0]["env"]]
    assert names.count("SCONE_CAS_ADDR") == 1
    assert env(after["spec"]["containers"][0])["SCONE_CAS_ADDR"] == "cas.example:18765"


@pytest.mark.parametrize(
    "existing",
    [
        {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"},
        {"key": "sgx.intel.com/epc", "operator": "Exists"},
        {"operator": "Exists"},
        {"key": "sgx.intel.com/epc", "operator": "Equal", "value": "true"},
    ],
)
def test_a_pod_tolerating_the_taint_gets_no_second_toleration(existing):
    after, _ = run(pod(tolerations=[existing]))
    assert after["spec"]["tolerations"] == [existing]


def test_a_toleration_of_another_effect_does_not_count():
    assert not tolerates({"key": "sgx.intel.com/epc", "effect": "NoExecute"}, "sgx.intel.com/epc")
    other = {"key": "x", "operator": "Exists"}
    after, _ = run(pod(tolerations=[other]))
    assert len(after["spec"]["tolerations"]) == 2


def test_simulation_injects_no_sgx_but_the_attestation_env():
    settings = Settings(simulation=True, aesm=True)
    after, result = run(pod(annotations={"enclave.dev/config-id": "demo/api"}), settings)
    c = after["spec"]["containers"][0]
    assert "resources" not in c
    assert "tolerations" not in after["spec"]
    e = env(c)
    assert e["SCONE_MODE"] == "SIM"
    assert e["SGX_MODE"] == "SIM"
    assert e["SCONE_CONFIG_ID"] == "demo/api"
    assert "SGX_AESM_ADDR" not in e
    assert result.summary is not None
    assert result.summary["mode"] == "simulation"


def test_simulation_needs_no_plugin():
    run(pod(), Settings(simulation=True), plugin=None)


def test_aesm_mounts_the_socket_directory():
    after, _ = run(pod(), Settings(aesm=True))
    c = after["spec"]["containers"][0]
    assert env(c)["SGX_AESM_ADDR"] == "1"
    assert {"name": "enclave-aesmd", "mountPath": "/var/run/aesmd"} in c["volumeMounts"]
    assert any(
        v.get("hostPath", {}).get("path") == "/var/run/aesmd" for v in after["spec"]["volumes"]
    )


def test_init_containers_only_when_configured_or_asked():
    p = pod(initContainers=[{"name": "init"}])
    after, _ = run(p)
    assert "env" not in after["spec"]["initContainers"][0]
    after, _ = run(p, Settings(init_containers=True))
    assert "SCONE_CAS_ADDR" in env(after["spec"]["initContainers"][0])
    p = pod(initContainers=[{"name": "init"}], annotations={"enclave.dev/init-containers": "true"})
    after, _ = run(p)
    assert "SCONE_CAS_ADDR" in env(after["spec"]["initContainers"][0])


def test_containers_annotation_selects_some():
    p = pod({"name": "app"}, {"name": "proxy"}, annotations={"enclave.dev/containers": "app"})
    after, _ = run(p)
    app, proxy = after["spec"]["containers"]
    assert "resources" in app
    assert "resources" not in proxy
    assert "env" not in proxy


REFUSALS = [
    ({"enclave.dev/plugin": "amd"}, {}, "enclave.dev/plugin"),
    ({"enclave.dev/epc": "lots"}, {}, "enclave.dev/epc"),
    ({"enclave.dev/epc": "-1Mi"}, {}, "enclave.dev/epc"),
    ({"enclave.dev/epc": "1.5Mi", "enclave.dev/plugin": "azure"}, {}, "enclave.dev/epc"),
    ({"enclave.dev/config-id": "no-slash"}, {}, "enclave.dev/config-id"),
    ({"enclave.dev/containers": "ghost"}, {}, "enclave.dev/containers"),
    ({"enclave.dev/init-containers": "yes"}, {}, "enclave.dev/init-containers"),
    ({}, {"limits": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "10"}}, "azure"),
    ({"enclave.dev/epc": "64Mi"}, {"limits": {"sgx.intel.com/epc": "32Mi"}}, "enclave.dev/epc"),
]


@pytest.mark.parametrize(("notes", "resources", "named"), REFUSALS)
def test_invalid_or_contradictory_requests_are_refused(notes, resources, named):
    p = pod({"name": "app", "resources": resources}, annotations=notes)
    with pytest.raises(Refusal, match=named.replace(".", r"\.")):
        mutate(p, "apps", Settings(), INTEL)


def test_epc_annotation_equal_to_own_limit_is_fine():
    own = {"name": "app", "resources": {"limits": {"sgx.intel.com/epc": "64Mi"}}}
    run(pod(own, annotations={"enclave.dev/epc": "67108864"}))


def test_simulation_refuses_sgx_hardware_requests():
    own = {"name": "app", "resources": {"limits": {"sgx.intel.com/epc": "10Mi"}}}
    with pytest.raises(Refusal, match="simulation"):
        mutate(pod(own), "apps", Settings(simulation=True), None)
    hw = {"name": "app", "env": [{"name": "SCONE_MODE", "value": "HW"}]}
    with pytest.raises(Refusal, match="simulation"):
        mutate(pod(hw), "apps", Settings(simulation=True), None)


def test_no_plugin_detected_without_simulation_is_refused():
    with pytest.raises(Refusal, match=r"enclave\.dev/plugin"):
        mutate(pod(), "apps", Settings(), None)
    after, _ = run(pod(annotations={"enclave.dev/plugin": "enclave"}), plugin=None)
    assert after["spec"]["containers"][0]["resources"]["limits"] == {"sgx.k8s.io/sgx": "1"}
