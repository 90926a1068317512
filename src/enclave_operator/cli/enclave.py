"""`enclavectl enclave`: run a program as an attested enclave (simulation), and measure one.

Everything after the first word of the command is the command's own (``--`` is optional), so
``enclavectl enclave run -- python3 -c 'print(1)'`` passes ``-c`` to python3.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Run a program as an attested enclave (simulation mode).")
_COMMAND = {"allow_interspersed_args": False}


@app.command(context_settings=_COMMAND)
def run(
    command: Annotated[list[str], typer.Argument(help="CMD ARGS… to attest and run.")],
    config_id: Annotated[
        str | None,
        typer.Option(envvar="SCONE_CONFIG_ID", help="policy/service whose grant to receive."),
    ] = None,
    las: Annotated[
        str | None, typer.Option(envvar="SCONE_LAS_ADDR", help="The node's LAS: host[:18766].")
    ] = None,
    cas: Annotated[
        str | None, typer.Option(envvar="SCONE_CAS_ADDR", help="CAS enclave port: host[:18765].")
    ] = None,
    cas_ca: Annotated[
        Path | None,
        typer.Option(envvar="SCONE_CAS_CA", help="CA file for CAS's certificate; else system."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds for each request.")] = 10.0,
) -> None:
    """Attest CMD (its measurement, a quote from LAS, CAS's verdict) and exec it with the
    environment and secrets its policy grants. Any refusal: one error line, exit 1."""
    from enclave_operator.runtime.run import Refusal, Request
    from enclave_operator.runtime.run import run as run_enclave

    try:
        run_enclave(Request(tuple(command), config_id, las, cas, cas_ca, timeout))
    except Refusal as e:
        sys.stderr.write(f"error: {e}\n")
        raise typer.Exit(1) from None
    except OSError as e:
        sys.stderr.write(f"error: cannot execute {command[0]}: {e.strerror}\n")
        raise typer.Exit(1) from None


@app.command(context_settings=_COMMAND)
def measure(
    command: Annotated[list[str], typer.Argument(help="CMD ARGS… as they will be run.")],
) -> None:
    """Print the measurement of CMD ARGS… (the value for a policy service's `measurement`)."""
    from enclave_operator.runtime.run import Refusal, program_of

    try:
        _, measured = program_of(command)
    except Refusal as e:
        sys.stderr.write(f"error: {e}\n")
        raise typer.Exit(1) from None
    typer.echo(measured)
