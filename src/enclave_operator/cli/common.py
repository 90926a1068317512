"""What the cluster-facing commands share: options, and failures printed as one line."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Annotated

import typer
from kubernetes import client
from rich.console import Console

from enclave_operator.install.cluster import CLIError

err = Console(stderr=True, highlight=False, soft_wrap=True)

KubeconfigOption = Annotated[
    str | None,
    typer.Option(
        "--kubeconfig",
        envvar="KUBECONFIG",
        help="Kubeconfig of the cluster [default ~/.kube/config]",
    ),
]
NamespaceOption = Annotated[
    str, typer.Option("--namespace", "-n", help="Namespace of the installation.")
]
DEFAULT_NAMESPACE = "enclave-system"


def say(message: str) -> None:
    err.print(message)


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """Every expected failure becomes `error: <what to do>` and exit 1, never a traceback."""
    try:
        yield
    except CLIError as e:
        raise fail(str(e)) from None
    except client.ApiException as e:
        try:
            message = json.loads(e.body or "{}").get("message") or e.reason
        except ValueError:
            message = e.reason
        raise fail(f"the API server refused: {e.status} {message}") from None
    except KeyboardInterrupt:
        raise fail("interrupted") from None


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def seconds(text: str | float) -> float:
    """`300`, `90s`, `5m` or `1h30m` in seconds; typer.BadParameter otherwise."""
    if isinstance(text, int | float):
        return float(text)  # a default
    m = _DURATION.match(text.strip())
    if not text.strip() or m is None:
        raise typer.BadParameter(f"{text!r} is not a duration such as 300, 90s, 5m or 1h")
    h, mins, secs = m.groups()
    return int(h or 0) * 3600 + int(mins or 0) * 60 + float(secs or 0)


TimeoutOption = Annotated[
    float,
    typer.Option(
        "--timeout", parser=seconds, metavar="DURATION", help="How long to wait: 300, 90s, 5m, 1h."
    ),
]
