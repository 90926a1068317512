"""The `enclavectl` entry point; each command group lives in a module of its own."""

from __future__ import annotations

import typer

from enclave_operator import __version__
from enclave_operator.cli import devcluster, operator

app = typer.Typer(
    name="enclavectl",
    help="Install, run and inspect Intel SGX confidential-computing services on Kubernetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(devcluster.app, name="dev-cluster")
app.add_typer(operator.app, name="operator")


@app.command()
def version() -> None:
    """Print the enclavectl version."""
    typer.echo(__version__)
