"""`enclavectl service cas`: the program the CAS chart runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def cas(
    db_dir: Annotated[Path, typer.Option(help="Database directory (SQLite, keys).")] = Path(
        "/etc/cas/db"
    ),
    tls_dir: Annotated[
        Path | None,
        typer.Option(help="tls.crt, tls.key and ca.crt (client identities); else self-signed."),
    ] = None,
    client_port: Annotated[int, typer.Option(help="HTTPS port of the client API.")] = 8081,
    enclave_port: Annotated[int, typer.Option(help="HTTPS port for LAS and workloads.")] = 18765,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "0.0.0.0",
    ephemeral: Annotated[
        bool, typer.Option("--ephemeral", help="Say at start that the store is not persistent.")
    ] = False,
    tls_reload_seconds: Annotated[
        float,
        typer.Option(
            envvar="CAS_TLS_RELOAD_SECONDS",
            help="Seconds between looks at --tls-dir for a renewed certificate.",
        ),
    ] = 10.0,
) -> None:
    """Run CAS (simulation mode): policies over HTTPS, stored in SQLite."""
    from enclave_operator.services.cas.server import Settings, run

    run(Settings(db_dir, tls_dir, client_port, enclave_port, host, ephemeral, tls_reload_seconds))
