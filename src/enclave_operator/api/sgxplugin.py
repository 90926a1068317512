"""The SGXPlugin spec: the device plugin that hands SGX devices to pods.

Cluster-scoped like LAS: one plugin per node for the whole cluster, with ``namespace`` in the
spec saying where its objects live.
"""

from __future__ import annotations

from enclave_operator.api.common import (
    common_properties,
    namespace_unchanged,
    workload_namespace,
)
from enclave_operator.api.schema import Schema, integer, obj

MAX_CAPACITY_SGX_PODS = 10000


def sgxplugin_spec() -> Schema:
    """The whole ``spec`` of an SGXPlugin."""
    return obj(
        "Desired state of the SGX device plugin: a daemon on every selected node that"
        " advertises SGX devices to the kubelet, so that pods can request one like any other"
        " extended resource.",
        {
            **common_properties("the SGX device plugin"),
            "capacitySGXPods": integer(
                "Number of SGX devices the plugin advertises on each node, that is how many"
                " pods on one node can use SGX at the same time. Unset: each node's allocatable"
                " pods (its maximum number of pods), so SGX never limits a node's pods.",
                minimum=1,
                maximum=MAX_CAPACITY_SGX_PODS,
            ),
            "namespace": workload_namespace("the SGX device plugin", "SGXPlugin"),
        },
        default={},
        rules=[namespace_unchanged("SGXPlugin")],
    )
