"""SGX plugin detection from node capacities, and the precheck's table rows."""

from __future__ import annotations

import pytest

from enclave_operator.install.plugins import (
    PLUGINS,
    NodeInfo,
    detect,
    has_resource,
    labelled_without_plugin,
    plugin_for,
    precheck,
    sgx_node_selector,
)

INTEL = {"sgx.intel.com/epc": "128Mi", "sgx.intel.com/enclave": "20"}
AZURE = {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "128"}
ALIBABA = {"alibabacloud.com/sgx_epc_MiB": "128"}
OURS = {"sgx.k8s.io/sgx": "110"}
SGX = {"feature.node.kubernetes.io/cpu-sgx.enabled": "true"}


def node(name: str, capacity: dict[str, str], labels: dict[str, str] | None = None) -> NodeInfo:
    return NodeInfo(name, {"cpu": "4", "memory": "16Gi", **capacity}, labels or {})


def test_the_order_is_alibaba_azure_intel_then_ours():
    assert [p.resource for p in PLUGINS] == [
        "alibabacloud.com/sgx_epc_MiB",
        "kubernetes.azure.com/sgx_epc_mem_in_MiB",
        "sgx.intel.com/epc",
        "sgx.k8s.io/sgx",
    ]


@pytest.mark.parametrize(
    ("capacities", "expected"),
    [
        ([INTEL], "intel"),
        ([AZURE], "azure"),
        ([ALIBABA], "alibaba"),
        ([OURS], "enclave"),
        ([{}, INTEL, {}], "intel"),  # one node is enough
        ([INTEL, AZURE], "azure"),  # Azure is asked before Intel
        ([{**INTEL, **ALIBABA}], "alibaba"),
        ([OURS, INTEL], "intel"),  # ours comes last
        ([{}, {}], None),
        ([], None),
    ],
)
def test_detect(capacities, expected):
    nodes = [node(f"n{i}", c) for i, c in enumerate(capacities)]
    found = detect(nodes)
    assert (found.name if found else None) == expected


@pytest.mark.parametrize("amount", ["0", "0Mi", "garbage"])
def test_a_zero_or_unreadable_amount_is_no_plugin(amount: str):
    n = node("n", {"sgx.intel.com/epc": amount})
    assert not has_resource(n, "sgx.intel.com/epc")
    assert detect([n]) is None


def test_plugin_for_a_known_and_a_custom_key():
    assert plugin_for("sgx.intel.com/epc").vendor == "Intel"
    custom = plugin_for("example.com/sgx")
    assert (custom.name, custom.resource) == ("custom", "example.com/sgx")


def test_node_selector_only_when_the_label_marks_exactly_the_sgx_nodes():
    sgx_nodes = [node("a", INTEL, SGX), node("b", INTEL, SGX)]
    plain = node("c", {})
    assert sgx_node_selector([*sgx_nodes, plain], "sgx.intel.com/epc") == SGX
    # every node has SGX: no need to select
    assert sgx_node_selector(sgx_nodes, "sgx.intel.com/epc") == {}
    # the label is missing on an SGX node, or present on a node without SGX: it cannot select
    assert (
        sgx_node_selector([node("a", INTEL, SGX), node("b", INTEL), plain], "sgx.intel.com/epc")
        == {}
    )
    assert sgx_node_selector([*sgx_nodes, node("c", {}, SGX)], "sgx.intel.com/epc") == {}


def test_precheck_rows_per_plugin_with_amounts():
    rows = precheck([node("a", INTEL), node("b", {**INTEL, **AZURE}), node("c", {})])
    by = {r.plugin.name: r for r in rows}
    assert list(by) == ["alibaba", "azure", "intel", "enclave"]
    assert by["intel"].nodes == ("a", "b")
    assert by["intel"].amounts == ("128Mi", "128Mi")
    assert by["azure"].nodes == ("b",)
    assert by["alibaba"].nodes == by["enclave"].nodes == ()


def test_nodes_labelled_sgx_without_any_plugin_resource():
    nodes = [node("a", INTEL, SGX), node("b", {}, SGX), node("c", {})]
    assert labelled_without_plugin(nodes) == ["b"]
