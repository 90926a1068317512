"""`enclavectl status`, `check` and `precheck`: reading the cluster, never changing it."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from enclave_operator.api.kinds import ENCRYPTED_POLICY, SIGNED_POLICY
from enclave_operator.cli.common import (
    KubeconfigOption,
    TimeoutOption,
    fail,
    one_line_errors,
)
from enclave_operator.install import plugins, progress
from enclave_operator.install.cluster import Cluster
from enclave_operator.install.summary import SERVICE_KINDS, Row, describe, rows

ALL_ROW_KINDS = (*SERVICE_KINDS, SIGNED_POLICY, ENCRYPTED_POLICY)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"
    YAML = "yaml"


def _rows(cluster: Cluster, kinds: tuple[object, ...] = ALL_ROW_KINDS) -> list[Row]:
    return rows(
        (kind, body) for kind in ALL_ROW_KINDS if kind in kinds for body in cluster.list_crs(kind)
    )


def _console() -> Console:
    """Logs and pipes get wide lines rather than cramped, folded columns."""
    return Console(width=None if sys.stdout.isatty() else 160, highlight=False)


def _state(state: str) -> Text:
    colour = {
        "HEALTHY": "green",
        "REGISTERED": "green",
        "PENDING": "yellow",
        "UNHEALTHY": "red",
        "FAILED": "red",
    }.get(state.split()[0])
    return Text(state, style=colour or "")


def status_table(listed: list[Row]) -> Table:
    """One row per resource; the cells say what a person needs to act on."""
    table = Table(title="enclave-operator resources", title_justify="left")
    for column in (
        "kind",
        "namespace",
        "name",
        "state",
        "conditions not met",
        "alerts",
        "SGX devices used/capacity",
    ):
        table.add_column(column, overflow="fold")
    for r in listed:
        table.add_row(
            r.kind,
            r.namespace or "",
            r.name,
            _state(r.state),
            "\n".join(
                f"{u.type}={u.status}" + (f": {u.message[:120]}" if u.message else "")
                for u in r.unmet
            ),
            "\n".join(f"{k}={v}" for k, v in r.alerts.items()),
            "\n".join(f"{node} {use}" for node, use in r.devices.items()),
        )
    return table


def status(
    output: Annotated[
        Output, typer.Option("-o", "--output", help="table, json or yaml")
    ] = Output.TABLE,
    kubeconfig: KubeconfigOption = None,
) -> None:
    """Every CAS, LAS, SGXPlugin and policy: state, unmet conditions, alerts, SGX devices."""
    with one_line_errors():
        listed = _rows(Cluster.connect(kubeconfig))
    if output is Output.JSON:
        typer.echo(json.dumps([r.as_dict() for r in listed], indent=2))
    elif output is Output.YAML:
        typer.echo(yaml.safe_dump([r.as_dict() for r in listed], sort_keys=False), nl=False)
    elif not listed:
        typer.echo("no CAS, LAS, SGXPlugin or policy found")
    else:
        _console().print(status_table(listed))


def check(timeout: TimeoutOption = 60.0, kubeconfig: KubeconfigOption = None) -> None:
    """Exit 0 once every CAS, LAS and SGXPlugin is HEALTHY; exit 1 if that takes too long."""
    with one_line_errors():
        cluster = Cluster.connect(kubeconfig)
        verdict, _ = progress.wait_healthy(
            lambda: _rows(cluster, SERVICE_KINDS), timeout, Console(highlight=False, soft_wrap=True)
        )
    if not verdict.ok:
        if verdict.total == 0:
            raise fail("no CAS, LAS or SGXPlugin found: nothing is running")
        raise fail(
            f"{verdict.ready}/{verdict.total} HEALTHY after {timeout:.0f}s; "
            + "; ".join(describe(r) for r in verdict.waiting)
        )


def precheck(kubeconfig: KubeconfigOption = None) -> None:
    """SGX-capable nodes per device plugin; exit 1 when there are none."""
    with one_line_errors():
        nodes = Cluster.connect(kubeconfig).nodes()
    table = Table(title=f"SGX device plugins on {len(nodes)} nodes", title_justify="left")
    for column in ("plugin", "resource", "nodes", "per node"):
        table.add_column(column, overflow="fold")
    found = plugins.precheck(nodes)
    for entry in found:
        amounts = ", ".join(f"{n}={a}" for n, a in zip(entry.nodes, entry.amounts, strict=True))
        table.add_row(entry.plugin.vendor, entry.plugin.resource, str(len(entry.nodes)), amounts)
    console = _console()
    console.print(table)
    if lonely := plugins.labelled_without_plugin(nodes):
        console.print(f"labelled SGX-capable but advertising no SGX resource: {', '.join(lonely)}")
    detected = plugins.detect(nodes)
    if detected is None:
        raise fail(
            "no SGX-capable node: install an SGX device plugin,"
            " or run without SGX: enclavectl install --simulation"
        )
    count = len(plugins.nodes_with(nodes, detected.resource))
    console.print(
        f"install would use {detected.vendor} ({detected.resource}, {count} nodes)", highlight=False
    )
