"""The LAS spec: the per-node Local Attestation Service and the host port it listens on.

LAS is cluster-scoped because it is one daemon per node for the whole cluster; ``namespace``
in its spec says where that daemon's objects live.
"""

from __future__ import annotations

from enclave_operator.api.common import (
    common_properties,
    namespace_unchanged,
    workload_namespace,
)
from enclave_operator.api.schema import Schema, obj, port

DEFAULT_HOST_PORT = 18766


def las_spec() -> Schema:
    """The whole ``spec`` of a LAS."""
    return obj(
        "Desired state of the Local Attestation Service (LAS): a daemon on every selected node"
        " that enclaves on that node use to create their attestation quotes.",
        {
            **common_properties("LAS"),
            "hostPort": port(
                "Port that LAS opens on each node's own address. A Service cannot send a"
                " request to the instance on the caller's node, so workloads reach LAS at"
                " their pod's status.hostIP on this port.",
                default=DEFAULT_HOST_PORT,
            ),
            "namespace": workload_namespace("LAS", "LAS"),
        },
        default={},
        rules=[namespace_unchanged("LAS")],
    )
