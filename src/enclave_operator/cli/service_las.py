"""`enclavectl service las`: the program the LAS chart runs on every node."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def las(
    port: Annotated[int, typer.Option(help="Port to listen on (the chart's hostPort).")] = 18766,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    node: Annotated[
        str | None,
        typer.Option(envvar="NODE_NAME", help="Node name put into quotes; default: hostname."),
    ] = None,
    cas: Annotated[
        str | None,
        typer.Option(envvar="SCONE_CAS_ADDR", help="CAS enclave port to enrol with: host[:18765]."),
    ] = None,
    cas_ca: Annotated[
        Path | None,
        typer.Option(envvar="SCONE_CAS_CA", help="CA file that verifies CAS's certificate."),
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option(help="Client certificate (CN enclave-las) for enrolment.")
    ] = None,
    client_key: Annotated[Path | None, typer.Option(help="Its private key.")] = None,
    key_dir: Annotated[
        Path | None,
        typer.Option(help="Keep the attestation key here; default: a new key per start."),
    ] = None,
) -> None:
    """Run LAS (simulation mode): quotes signed by this node's key, enrolled with CAS."""
    from enclave_operator.services.las.server import Settings, run

    if (client_cert is None) != (client_key is None):
        raise typer.BadParameter("--client-cert and --client-key go together")
    run(Settings(port, host, node, cas, cas_ca, client_cert, client_key, key_dir))
