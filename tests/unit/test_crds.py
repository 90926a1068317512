"""The generated CRDs and the samples, checked without a cluster.

The API server is the final judge (see tests/integration/test_crds.py); these tests catch the
mistakes that need no server: drift between code and YAML, nodes without a type or a
description, defaults or samples that break their own schema. CEL rules are not evaluated here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from enclave_operator.api import crds
from enclave_operator.api.kinds import (
    ALL_KINDS,
    CAS,
    ENCRYPTED_POLICY,
    LAS,
    SGXPLUGIN,
    SIGNED_POLICY,
    Kind,
)

ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = ROOT / "config" / "crd"
CHART_CRD_DIR = ROOT / "charts" / "enclave-operator" / "crds"
SAMPLE_DIR = ROOT / "config" / "samples"

SAMPLES = {
    CAS: ("services_v1beta1_cas.yaml", "cas-sample"),
    LAS: ("base_v1beta1_las.yaml", "las-sample"),
    SGXPLUGIN: ("base_v1beta1_sgxplugin.yaml", "sgxplugin-sample"),
    SIGNED_POLICY: ("cas_v1beta1_signedpolicy.yaml", "signedpolicy-sample"),
    ENCRYPTED_POLICY: ("cas_v1beta1_encryptedpolicy.yaml", "encryptedpolicy-sample"),
}

TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "integer": int,
    "number": (int, float),
    "boolean": bool,
}


def validate(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Errors of ``value`` against a structural schema's OpenAPI part (types, enums, bounds,
    patterns, required and unknown fields); enough to catch a broken sample or default."""
    if value is None:
        return [] if schema.get("nullable") else [f"{path}: null is not allowed"]
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{path}: {value!r} is neither integer nor string"]
    elif isinstance(value, bool) != (schema["type"] == "boolean") or not isinstance(
        value, TYPES[schema["type"]]
    ):
        return [f"{path}: {value!r} is not of type {schema['type']}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{path}: {value} is out of range")
    if isinstance(value, str):
        if not schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", len(value)):
            errors.append(f"{path}: length {len(value)} is out of range")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, list):
        if not schema.get("minItems", 0) <= len(value) <= schema.get("maxItems", len(value)):
            errors.append(f"{path}: {len(value)} items is out of range")
        for i, item in enumerate(value):
            errors += validate(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        missing = [key for key in schema.get("required", []) if key not in value]
        errors += [f"{path}.{key}: required" for key in missing]
        properties = schema.get("properties", {})
        others = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                errors += validate(item, properties[key], f"{path}.{key}")
            elif isinstance(others, dict):
                errors += validate(item, others, f"{path}.{key}")
            elif properties or others is False:
                errors.append(f"{path}.{key}: unknown field")
    return errors


def root_schema(kind: Kind) -> dict[str, Any]:
    (version,) = crds.crd(kind)["spec"]["versions"]
    schema: dict[str, Any] = version["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema node below ``schema`` (value validations inside anyOf excluded)."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from nodes(child, f"{path}.{name}")
    if "items" in schema:
        yield from nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from nodes(schema["additionalProperties"], f"{path}{{}}")


def all_nodes() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for kind in ALL_KINDS:
        for path, node in nodes(root_schema(kind)):
            yield kind.kind, path, node


@pytest.mark.parametrize("directory", [CRD_DIR, CHART_CRD_DIR], ids=["config", "chart"])
def test_checked_in_crds_match_the_generator(directory: Path):
    assert crds.check(directory) == [], "run: make crds"


def test_rendering_is_deterministic_and_alias_free():
    first, second = crds.manifests(), crds.manifests()
    assert first == second
    assert sorted(first) == sorted(crds.file_name(k) for k in ALL_KINDS)
    for text in first.values():
        assert "&id" not in text, "YAML anchors"
        assert "*id" not in text, "YAML aliases"


def test_check_names_the_files_that_drifted(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert crds.main(["--write", str(tmp_path)]) == 0
    assert crds.main(["--check", str(tmp_path)]) == 0
    changed = tmp_path / crds.file_name(LAS)
    changed.write_text(changed.read_text().replace("18766", "18767"))
    (tmp_path / crds.file_name(CAS)).unlink()
    (tmp_path / "old.enclave.dev_gone.yaml").write_text("{}\n")
    capsys.readouterr()
    assert crds.main(["--check", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"{changed}: differs" in err
    assert f"{tmp_path / crds.file_name(CAS)}: missing" in err
    assert "old.enclave.dev_gone.yaml: not generated" in err
    assert crds.file_name(SGXPLUGIN) not in err
    assert sorted(crds.write(tmp_path)) == sorted([changed, tmp_path / crds.file_name(CAS)])


@pytest.mark.parametrize(
    ("kind", "group", "plural", "short", "namespaced"),
    [
        (CAS, "services.enclave.dev", "cas", [], True),
        (LAS, "base.enclave.dev", "las", [], False),
        (SGXPLUGIN, "base.enclave.dev", "sgxplugins", ["sgx"], False),
        (SIGNED_POLICY, "cas.enclave.dev", "signedpolicies", ["spol"], True),
        (ENCRYPTED_POLICY, "cas.enclave.dev", "encryptedpolicies", ["epol"], True),
    ],
    ids=lambda v: v.kind if isinstance(v, Kind) else None,
)
def test_crd_names_and_scope(kind: Kind, group: str, plural: str, short: list[str], namespaced):
    crd = crds.crd(kind)
    spec = crd["spec"]
    assert crd["metadata"]["name"] == f"{plural}.{group}"
    assert spec["group"] == group
    assert spec["names"]["plural"] == plural
    assert spec["names"].get("shortNames", []) == short
    assert spec["names"]["categories"] == ["enclave"]
    assert spec["scope"] == ("Namespaced" if namespaced else "Cluster")
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1beta1", True, True)
    assert version["subresources"] == {"status": {}}
    assert crds.file_name(kind) == f"{group}_{plural}.yaml"


def test_every_node_has_a_type():
    untyped = [
        f"{kind}{path}"
        for kind, path, node in all_nodes()
        if "type" not in node and not node.get("x-kubernetes-int-or-string")
    ]
    assert untyped == []


def test_int_or_string_nodes_are_quantities():
    quantities = [node for _, _, node in all_nodes() if node.get("x-kubernetes-int-or-string")]
    assert quantities, "resources and persistence.size are quantities"
    for node in quantities:
        assert node["anyOf"] == [{"type": "integer"}, {"type": "string"}]
        assert re.search(node["pattern"], "1Gi")
        assert not re.search(node["pattern"], "lots")


def test_every_property_has_a_description():
    missing = [
        f"{kind}{path}"
        for kind, path, node in all_nodes()
        if path and path != ".metadata" and not path.endswith(("[]", "{}"))
        if not node.get("description", "").strip()
    ]
    assert missing == []


def test_defaults_are_valid_against_their_own_node():
    defaults = [(f"{k}{p}", n) for k, p, n in all_nodes() if "default" in n]
    assert len(defaults) > 20
    for where, node in defaults:
        assert validate(node["default"], node, where) == []


def test_cel_rules_have_messages_and_bounded_strings():
    for where, _, node in all_nodes():
        for validation in node.get("x-kubernetes-validations", []):
            assert validation["rule"], where
            assert validation["message"], where
            if node.get("type") == "string" or node.get("x-kubernetes-int-or-string"):
                assert "maxLength" in node, f"{where}: unbounded CEL cost"


@pytest.mark.parametrize("kind", [SIGNED_POLICY, ENCRYPTED_POLICY], ids=lambda k: k.kind)
def test_policy_specs_are_required_and_immutable(kind: Kind):
    schema = root_schema(kind)
    assert schema["required"] == ["spec"]
    rules = schema["properties"]["spec"]["x-kubernetes-validations"]
    assert [r["rule"] for r in rules] == ["self == oldSelf"]
    verb = "sign" if kind is SIGNED_POLICY else "encrypt"
    assert verb in rules[0]["message"]
    assert "create" in rules[0]["message"]


def test_printer_columns_point_at_status_fields():
    for kind in ALL_KINDS:
        (version,) = crds.crd(kind)["spec"]["versions"]
        columns = version["additionalPrinterColumns"]
        assert [c["name"] for c in columns][:: len(columns) - 1] == ["State", "Age"]
        props = root_schema(kind)["properties"]
        for column in columns[:-1]:
            part, field = column["jsonPath"].removeprefix(".").split(".", 1)
            assert part in ("status", "spec"), f"{kind.kind}: {column['jsonPath']}"
            fields = props[part]["properties"]
            assert field in fields, f"{kind.kind}: {column['jsonPath']}"
            assert column["type"] == fields[field]["type"]


def load_sample(kind: Kind) -> dict[str, Any]:
    sample: dict[str, Any] = yaml.safe_load((SAMPLE_DIR / SAMPLES[kind][0]).read_text())
    return sample


@pytest.mark.parametrize("kind", ALL_KINDS, ids=lambda k: k.kind)
def test_sample_is_valid(kind: Kind):
    sample = load_sample(kind)
    assert sample["apiVersion"] == kind.api_version
    assert sample["kind"] == kind.kind
    assert sample["metadata"] == {"name": SAMPLES[kind][1]}, "no namespace in samples"
    assert validate(sample, root_schema(kind)) == []


def test_samples_directory_has_exactly_the_five_samples():
    assert sorted(p.name for p in SAMPLE_DIR.glob("*.yaml")) == sorted(
        name for name, _ in SAMPLES.values()
    )


def test_signed_policy_sample_carries_a_policy_document():
    policy = yaml.safe_load(load_sample(SIGNED_POLICY)["spec"]["policy"])
    assert {"name", "version", "services"} <= policy.keys()


BROKEN = [
    (SGXPLUGIN, ["spec", "capacitySGXPods"], 0, "out of range"),
    (SGXPLUGIN, ["spec", "capacitySGXPods"], "110", "not of type integer"),
    (LAS, ["spec", "namespace"], "Bad_NS", "does not match"),
    (LAS, ["spec", "hostPort"], 65536, "out of range"),
    (CAS, ["spec", "service", "type"], "Foo", "is not one of"),
    (CAS, ["spec", "persistence", "accessModes"], [], "items is out of range"),
    (CAS, ["spec", "persistence", "size"], "lots", "does not match"),
    (CAS, ["spec", "persistence", "enabled"], "yes", "not of type boolean"),
    (CAS, ["spec", "replicas"], 3, "unknown field"),
    (SIGNED_POLICY, ["spec", "signatures", 0, "signer"], None, "null is not allowed"),
    (ENCRYPTED_POLICY, ["spec", "policy"], "", "length 0 is out of range"),
]


@pytest.mark.parametrize(("kind", "where", "value", "error"), BROKEN)
def test_validator_catches_broken_samples(kind: Kind, where: list[Any], value: Any, error: str):
    sample = load_sample(kind)
    parent = sample
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = value
    assert any(error in e for e in validate(sample, root_schema(kind)))


@pytest.mark.parametrize(
    ("kind", "field"),
    [
        (SIGNED_POLICY, "signatures"),
        (ENCRYPTED_POLICY, "encryptionKey"),
        (SIGNED_POLICY, "casAddress"),
    ],
)
def test_validator_catches_missing_required_fields(kind: Kind, field: str):
    sample = load_sample(kind)
    del sample["spec"][field]
    assert validate(sample, root_schema(kind)) == [f".spec.{field}: required"]
