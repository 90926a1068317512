"""The `enclavectl` entry point."""

from __future__ import annotations

import sys

import typer


def _command() -> tuple[typer.Typer, str, list[str]]:
    """`enclavectl operator …` loads its own command group only: the operator's process then
    holds none of what the other commands import (the Kubernetes client library, above all)."""
    if sys.argv[1:2] == ["operator"]:
        from enclave_operator.cli.operator import app as group

        return group, "enclavectl operator", sys.argv[2:]
    from enclave_operator.cli.app import app

    return app, "enclavectl", sys.argv[1:]


def main() -> None:
    """enclavectl, with usage errors (unknown flags, bad values) as one line, not a panel."""
    app, prog, args = _command()
    try:
        code = app(args=args, standalone_mode=False, prog_name=prog)
    except typer.TyperException as e:  # click's UsageError and BadParameter derive from it
        ctx = getattr(e, "ctx", None)
        where = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        sys.stderr.write(f"error: {e.format_message()}{where}\n")
        sys.exit(e.exit_code)
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
