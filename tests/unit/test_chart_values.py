"""Release names, namespaces and chart values derived from a CR."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, SIGNED_POLICY
from enclave_operator.charts import chart_path
from enclave_operator.charts.values import release_name, release_namespace, values_for

ROOT = Path(__file__).resolve().parents[2]
LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def sample(name):
    return yaml.safe_load((ROOT / "config" / "samples" / name).read_text())


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [(CAS, "x", "cas-x"), (LAS, "las-sample", "las-las-sample"), (SGXPLUGIN, "p", "sgxplugin-p")],
)
def test_release_name_short(kind, name, expected):
    assert release_name(kind, name) == expected


def test_release_name_exactly_53_is_kept():
    name = "a" * (53 - len("cas-"))
    assert release_name(CAS, name) == f"cas-{name}"


@pytest.mark.parametrize("name", ["a" * 50, "b" * 253, "my-app." * 30 + "x", "x" * 49 + "-" + "y"])
def test_release_name_long_is_a_hashed_label(name):
    result = release_name(SGXPLUGIN, name)
    assert len(result) <= 53
    assert LABEL.match(result), result
    assert re.search(r"-[0-9a-f]{8}$", result)
    assert result.startswith("sgxplugin-")
    assert release_name(SGXPLUGIN, name) == result  # stable


def test_release_name_hash_separates_names_with_a_common_prefix():
    a, b = "a" * 60 + "1", "a" * 60 + "2"
    assert release_name(CAS, a) != release_name(CAS, b)


def test_release_name_with_dots_is_a_label_distinct_from_the_dashed_name():
    dotted = release_name(CAS, "my.app")
    assert LABEL.match(dotted)
    assert dotted != release_name(CAS, "my-app") == "cas-my-app"


def test_release_name_refuses_kinds_without_chart():
    with pytest.raises(ValueError, match="SignedPolicy"):
        release_name(SIGNED_POLICY, "x")


def test_release_namespace():
    cas = {"metadata": {"name": "c", "namespace": "team-a"}, "spec": {"namespace": "ignored"}}
    assert release_namespace(CAS, cas, "operator") == "team-a"
    assert release_namespace(LAS, {"metadata": {"name": "l"}, "spec": {}}, "operator") == "operator"
    assert release_namespace(LAS, {"metadata": {"name": "l"}}, "operator") == "operator"
    plugin = {"metadata": {"name": "p"}, "spec": {"namespace": "sgx"}}
    assert release_namespace(SGXPLUGIN, plugin, "operator") == "sgx"


COMMON_DEFAULTS = {
    "autoUpdate": False,
    "image": "enclave-operator:0.1.0",
    "imagePullPolicy": "Always",
    "imagePullSecret": None,
    "resources": {},
    "nodeSelector": {},
    "tolerations": [],
    "owner": None,
}


def test_values_for_empty_cas_has_crd_defaults():
    assert values_for(CAS, {"metadata": {"name": "c"}}, None) == {
        **COMMON_DEFAULTS,
        "service": {
            "type": "ClusterIP",
            "clientPort": 8081,
            "enclavePort": 18765,
            "loadBalancerIP": None,
            "nodePorts": {"clientPort": None, "enclavePort": None},
            "annotations": {},
        },
        "lasEnrolment": "Any",
        "persistence": {
            "enabled": False,
            "mountPath": "/etc/cas/db",
            "storageClass": None,
            "accessModes": ["ReadWriteOnce"],
            "size": "1Gi",
        },
        "ingress": {"enabled": False, "host": None, "className": None, "annotations": {}},
    }


def test_values_for_empty_las_and_sgxplugin_have_crd_defaults():
    assert values_for(LAS, {"spec": {}}, None) == {**COMMON_DEFAULTS, "hostPort": 18766}
    # no capacity: the chart passes no flag and each plugin reads its Node's allocatable pods
    assert values_for(SGXPLUGIN, {"spec": None}, None) == {
        **COMMON_DEFAULTS,
        "capacitySGXPods": None,
    }


def test_chart_defaults_equal_values_for_of_an_empty_spec():
    for kind in (CAS, LAS, SGXPLUGIN):
        defaults = yaml.safe_load((chart_path(kind) / "values.yaml").read_text())
        assert defaults == values_for(kind, {}, None), kind.kind


def test_the_cr_is_the_owner_once_it_has_a_uid():
    meta = {"name": "c", "namespace": "n", "uid": "u-1"}
    assert values_for(CAS, {"metadata": meta}, None)["owner"] == {
        "apiVersion": CAS.api_version,
        "kind": "CAS",
        "name": "c",
        "uid": "u-1",
    }
    assert (
        values_for(LAS, {"metadata": {"name": "l", "uid": "u-2"}}, None)["owner"]["kind"] == "LAS"
    )


def test_values_for_every_field_set():
    common = {
        "autoUpdate": True,
        "image": "registry.example/cas:2",
        "imagePullPolicy": "IfNotPresent",
        "imagePullSecrets": [{"name": "ignored-here"}],
        "resources": {"limits": {"memory": "1Gi"}, "requests": {"cpu": 1}},
        "nodeSelector": {"disk": "ssd"},
    }
    cas = {
        "metadata": {"name": "c", "namespace": "n"},
        "spec": {
            **common,
            "service": {
                "type": "NodePort",
                "clientPort": 9001,
                "enclavePort": 9002,
                "nodePorts": {"clientPort": 30001, "enclavePort": 30002},
                "annotations": {"a": "b"},
            },
            "persistence": {
                "enabled": True,
                "mountPath": "/db",
                "storageClass": "-",
                "accessModes": ["ReadWriteOncePod"],
                "size": 1073741824,
            },
        },
    }
    values = values_for(CAS, cas, "regcred")
    assert values["autoUpdate"] is True
    assert values["image"] == "registry.example/cas:2"
    assert values["imagePullPolicy"] == "IfNotPresent"
    assert values["imagePullSecret"] == "regcred"
    assert values["resources"] == {"limits": {"memory": "1Gi"}, "requests": {"cpu": 1}}
    assert values["nodeSelector"] == {"disk": "ssd"}
    assert values["service"] == {
        "type": "NodePort",
        "clientPort": 9001,
        "enclavePort": 9002,
        "loadBalancerIP": None,
        "nodePorts": {"clientPort": 30001, "enclavePort": 30002},
        "annotations": {"a": "b"},
    }
    assert values["persistence"] == {
        "enabled": True,
        "mountPath": "/db",
        "storageClass": "-",
        "accessModes": ["ReadWriteOncePod"],
        "size": "1073741824",  # a string, so that Helm does not print 1.073741824e+09
    }
    lb = values_for(
        CAS, {"spec": {"service": {"type": "LoadBalancer", "loadBalancerIP": "1.2.3.4"}}}, None
    )
    assert lb["service"]["loadBalancerIP"] == "1.2.3.4"
    las = values_for(LAS, {"spec": {**common, "hostPort": 1234, "namespace": "x"}}, None)
    assert las["hostPort"] == 1234
    assert "namespace" not in las
    plugin = values_for(SGXPLUGIN, {"spec": {**common, "capacitySGXPods": 7}}, "s")
    assert plugin["capacitySGXPods"] == 7
    assert plugin["imagePullSecret"] == "s"


def test_values_for_samples():
    cas = values_for(CAS, sample("services_v1beta1_cas.yaml"), None)
    assert cas["resources"]["limits"] == {"memory": "512Mi"}
    assert cas["imagePullPolicy"] == "IfNotPresent"
    assert values_for(LAS, sample("base_v1beta1_las.yaml"), None)["hostPort"] == 18766
    plugin = values_for(SGXPLUGIN, sample("base_v1beta1_sgxplugin.yaml"), None)
    assert plugin["capacitySGXPods"] is None


def test_values_for_does_not_share_the_cr_dicts():
    cr = {"spec": {"nodeSelector": {"a": "b"}}}
    values_for(LAS, cr, None)["nodeSelector"]["c"] = "d"
    assert cr["spec"]["nodeSelector"] == {"a": "b"}
