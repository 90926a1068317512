"""The whole `enclavectl` command tree; each command group lives in a module of its own."""

from __future__ import annotations

import typer

from enclave_operator import __version__
from enclave_operator.cli import devcluster, inspection, install, operator, policy, service
from enclave_operator.cli import enclave as enclave_cli

app = typer.Typer(
    name="enclavectl",
    help="Install, run and inspect Intel SGX confidential-computing services on Kubernetes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(devcluster.app, name="dev-cluster")
app.add_typer(operator.app, name="operator")
app.add_typer(service.app, name="service")
app.add_typer(policy.app, name="policy")
app.add_typer(enclave_cli.app, name="enclave")
app.command()(install.install)
app.command()(install.uninstall)
app.command()(inspection.status)
app.command()(inspection.check)
app.command()(inspection.precheck)


@app.command()
def version() -> None:
    """Print the enclavectl version."""
    typer.echo(__version__)
