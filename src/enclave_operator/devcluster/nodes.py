"""Fake nodes for kwok: labelled SGX-capable, with the SGX resources of a chosen device plugin."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

KWOK_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_SELECTOR = f"{KWOK_ANNOTATION}=fake"
SGX_LABEL = "feature.node.kubernetes.io/cpu-sgx.enabled"
PLUGIN_LABEL = "enclave.dev/sgx-plugin"


class SGXFlavour(StrEnum):
    """Which device plugin the fake nodes pretend to run."""

    INTEL = "intel"
    AZURE = "azure"
    ALIBABA = "alibaba"
    NONE = "none"


# Per-node amounts, in the units each plugin advertises (facts.md: Intel counts EPC bytes and
# shared enclave/provision devices; Azure and Alibaba count EPC MiB as plain integers).
SGX_RESOURCES: dict[SGXFlavour, dict[str, str]] = {
    SGXFlavour.INTEL: {
        "sgx.intel.com/epc": "128Mi",
        "sgx.intel.com/enclave": "20",
        "sgx.intel.com/provision": "20",
    },
    SGXFlavour.AZURE: {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "128"},
    SGXFlavour.ALIBABA: {"alibabacloud.com/sgx_epc_MiB": "128"},
    SGXFlavour.NONE: {},
}

_BASE_CAPACITY = {"cpu": "32", "memory": "128Gi", "pods": "110", "ephemeral-storage": "500Gi"}


def node_name(index: int) -> str:
    return f"sgx-node-{index}"


def node_ip(index: int) -> str:
    """Loopback addresses, so that anything dialling a fake node stays on this machine."""
    return f"127.10.{index // 250}.{index % 250 + 1}"


def node_manifest(index: int, flavour: SGXFlavour) -> dict[str, Any]:
    name = node_name(index)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "type": "kwok",
        PLUGIN_LABEL: flavour.value,
    }
    if flavour is not SGXFlavour.NONE:
        labels[SGX_LABEL] = "true"
    resources = {**_BASE_CAPACITY, **SGX_RESOURCES[flavour]}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": labels, "annotations": {KWOK_ANNOTATION: "fake"}},
        "spec": {},
        "status": {
            "capacity": dict(resources),
            "allocatable": dict(resources),
            "addresses": [
                {"type": "InternalIP", "address": node_ip(index)},
                {"type": "Hostname", "address": name},
            ],
        },
    }
