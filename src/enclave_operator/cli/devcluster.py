"""`enclavectl dev-cluster`: a local control plane with kwok-simulated SGX nodes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from enclave_operator.devcluster.binaries import BinariesMissing
from enclave_operator.devcluster.cluster import ClusterError, DevCluster
from enclave_operator.devcluster.image import ImageError
from enclave_operator.devcluster.nodenet import NetworkError
from enclave_operator.devcluster.nodes import SGXFlavour
from enclave_operator.devcluster.processes import StartupError
from enclave_operator.devcluster.realnode import NodeError

app = typer.Typer(help="Run a local Kubernetes control plane with simulated SGX nodes.")
err = Console(stderr=True)

DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="Directory holding the cluster's data [env ENCLAVE_DEV_CLUSTER_DIR; "
        # not computed here: importing the CLI must work where no temporary directory is
        # writable (the services' containers have a read-only root and may have no /tmp)
        "default $TMPDIR/enclave-dev-cluster-$UID]",
    ),
]


def _fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(1)


@app.command()
def up(
    nodes: Annotated[int, typer.Option(min=0, max=5000, help="Number of fake nodes.")] = 3,
    sgx: Annotated[
        SGXFlavour, typer.Option(help="SGX device plugin the fake nodes advertise.")
    ] = SGXFlavour.INTEL,
    real_nodes: Annotated[
        int,
        typer.Option(
            min=0,
            max=1,
            help="Real nodes: 1 runs this machine as a node (kubelet, containerd, runc, CNI, "
            "kube-proxy, CoreDNS, the project's image; needs root), 0 none.",
        ),
    ] = 1,
    directory: DirOption = None,
) -> None:
    """Build missing binaries, start the control plane and kwok, create the fake nodes and
    the real one."""
    cluster = DevCluster(directory)
    try:
        cluster.up(
            nodes=nodes,
            sgx=sgx,
            real_nodes=real_nodes,
            say=lambda m: err.print(m, highlight=False),
        )
    except (ClusterError, BinariesMissing, StartupError, NodeError, NetworkError, ImageError) as e:
        raise _fail(str(e)) from None
    except subprocess.CalledProcessError as e:
        raise _fail(f"building the binaries failed (exit {e.returncode})") from None


@app.command()
def down(directory: DirOption = None) -> None:
    """Stop every process of the dev cluster and delete its data."""
    if not DevCluster(directory).down(say=lambda m: err.print(m, highlight=False)):
        err.print("no dev cluster to stop")


@app.command()
def status(
    directory: DirOption = None,
    output: Annotated[str, typer.Option("-o", "--output", help="table or json")] = "table",
) -> None:
    """Show which components run; exits 1 when the cluster is not running."""
    info = DevCluster(directory).status()
    if output == "json":
        typer.echo(json.dumps(info, indent=2))
    elif not info.get("components"):
        err.print(f"no dev cluster in {info['directory']}")
    else:
        table = Table(title=f"dev cluster {info['server']} ({info['nodes']} nodes, {info['sgx']})")
        table.add_column("component")
        table.add_column("state")
        for name, state in info["components"].items():
            table.add_row(name, f"[green]{state}[/]" if state == "running" else f"[red]{state}[/]")
        Console().print(table)
        typer.echo(f"KUBECONFIG={info['kubeconfig']}")
    if not info["running"]:
        raise typer.Exit(1)


@app.command()
def kubeconfig(directory: DirOption = None) -> None:
    """Print the kubeconfig path: export KUBECONFIG=$(enclavectl dev-cluster kubeconfig)."""
    cluster = DevCluster(directory)
    if not cluster.running():
        raise _fail(f"no dev cluster running in {cluster.directory}")
    typer.echo(str(cluster.kubeconfig))
