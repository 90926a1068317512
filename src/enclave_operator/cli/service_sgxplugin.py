"""`enclavectl service sgx-plugin`: the program the SGXPlugin chart runs on every node."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

MAX_CAPACITY = 10000  # the CRD's maximum of capacitySGXPods


def sgx_plugin(
    capacity_sgx_pods: Annotated[
        int,
        typer.Option(
            "--capacity-sgx-pods",
            min=0,
            max=MAX_CAPACITY,
            help="Devices to advertise: how many pods of this node may use SGX."
            " 0: the node's allocatable pods (110 when the Node cannot be read).",
        ),
    ] = 0,
    device_plugin_dir: Annotated[
        Path, typer.Option(help="The kubelet's device plugin directory (kubelet.sock is there).")
    ] = Path("/var/lib/kubelet/device-plugins"),
    dev_dir: Annotated[
        Path,
        typer.Option(help="The host's /dev as this process sees it, for the SGX device files."),
    ] = Path("/dev"),
    node_name: Annotated[
        str | None,
        typer.Option(envvar="NODE_NAME", help="This node, for its allocatable pods."),
    ] = None,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            help="A file that exists exactly while the kubelet has the plugin registered"
            " (for a readiness probe)."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Advertise sgx.k8s.io/sgx to the kubelet (device plugin API v1beta1) and hand SGX to pods."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")  # gRPC core's INFO lines are noise here
    from enclave_operator.cli.common import fail
    from enclave_operator.services.deviceplugin.plugin import PluginError, run

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s sgx-plugin: %(message)s",
    )
    try:
        run(capacity_sgx_pods, node_name, device_plugin_dir, dev_dir, ready_file)
    except PluginError as e:
        raise fail(str(e)) from None
