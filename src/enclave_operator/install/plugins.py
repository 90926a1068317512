"""Which SGX device plugin a cluster runs, read from the resources its nodes advertise. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from kubernetes.utils.quantity import parse_quantity

from enclave_operator.devcluster.nodes import SGX_LABEL


@dataclass(frozen=True)
class Plugin:
    name: str
    vendor: str
    resource: str


# Detection order: a node of a managed cloud may also carry a generic resource, so the
# cloud-specific ones are asked first; this project's own plugin comes last.
PLUGINS: tuple[Plugin, ...] = (
    Plugin("alibaba", "Alibaba Cloud", "alibabacloud.com/sgx_epc_MiB"),
    Plugin("azure", "Azure", "kubernetes.azure.com/sgx_epc_mem_in_MiB"),
    Plugin("intel", "Intel", "sgx.intel.com/epc"),
    Plugin("enclave", "enclave-operator SGXPlugin", "sgx.k8s.io/sgx"),
)


@dataclass(frozen=True)
class NodeInfo:
    name: str
    capacity: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)


def has_resource(node: NodeInfo, resource: str) -> bool:
    """A resource counts only with a positive amount: a plugin that lost its devices shows 0."""
    amount = node.capacity.get(resource)
    if amount is None:
        return False
    try:
        return bool(parse_quantity(amount) > 0)  # type: ignore[no-untyped-call]
    except ValueError:
        return False


def nodes_with(nodes: Iterable[NodeInfo], resource: str) -> list[NodeInfo]:
    return [n for n in nodes if has_resource(n, resource)]


def detect(nodes: Sequence[NodeInfo]) -> Plugin | None:
    """The first plugin, in PLUGINS order, that at least one node advertises."""
    return next((p for p in PLUGINS if nodes_with(nodes, p.resource)), None)


def plugin_for(resource: str) -> Plugin:
    """The plugin known by ``resource``, or a custom one (``--resource-key``)."""
    known = next((p for p in PLUGINS if p.resource == resource), None)
    return known or Plugin("custom", "custom", resource)


def sgx_node_selector(nodes: Sequence[NodeInfo], resource: str) -> dict[str, str]:
    """Where the per-node services may run: the SGX label when it marks exactly the nodes
    with the resource; empty when every node has SGX or the label cannot tell them apart."""
    sgx = nodes_with(nodes, resource)
    if not sgx or len(sgx) == len(nodes):
        return {}
    labelled = [n for n in nodes if n.labels.get(SGX_LABEL) == "true"]
    if {n.name for n in labelled} == {n.name for n in sgx}:
        return {SGX_LABEL: "true"}
    return {}


@dataclass(frozen=True)
class PrecheckRow:
    plugin: Plugin
    nodes: tuple[str, ...]
    amounts: tuple[str, ...]


def precheck(nodes: Sequence[NodeInfo]) -> list[PrecheckRow]:
    """One row per known plugin: the nodes advertising its resource and how much each has."""
    rows = []
    for plugin in PLUGINS:
        found = nodes_with(nodes, plugin.resource)
        rows.append(
            PrecheckRow(
                plugin,
                tuple(n.name for n in found),
                tuple(str(n.capacity[plugin.resource]) for n in found),
            )
        )
    return rows


def labelled_without_plugin(nodes: Sequence[NodeInfo]) -> list[str]:
    """Nodes labelled SGX-capable that advertise no plugin's resource: a plugin is missing."""
    return [
        n.name
        for n in nodes
        if n.labels.get(SGX_LABEL) == "true"
        and not any(has_resource(n, p.resource) for p in PLUGINS)
    ]
