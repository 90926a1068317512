"""`enclavectl service …`: the programs the service charts start, one module per service.

Each service registers its own command here; the service code itself lives in
`enclave_operator.services.<name>`, this layer only parses flags.
"""

from __future__ import annotations

import typer

app = typer.Typer(help="Run one of the services (the charts' container commands).")

from enclave_operator.cli import service_cas  # noqa: E402

app.command("cas")(service_cas.cas)

from enclave_operator.cli import service_sgxplugin  # noqa: E402

app.command("sgx-plugin")(service_sgxplugin.sgx_plugin)

from enclave_operator.cli import service_las  # noqa: E402

app.command("las")(service_las.las)
