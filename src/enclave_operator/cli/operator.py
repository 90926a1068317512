"""`enclavectl operator run`: the operator as a local process (or a pod's entry point)."""

from __future__ import annotations

import functools
import os
from enum import StrEnum
from typing import Annotated

import typer

app = typer.Typer(help="Run the operator.")


@app.callback()
def group() -> None:
    """Run the operator."""  # a group even with one command: `enclavectl operator run`


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


@app.command()
def run(
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            envvar="WATCH_NAMESPACES",
            help="Namespaced mode: watch namespaced objects (CAS, policies, releases, what they"
            " own) only here; repeat it, or list them space-separated in WATCH_NAMESPACES. The"
            " operator's namespace is always added. Default: every namespace.",
        ),
    ] = None,
    operator_namespace: Annotated[
        str,
        typer.Option(
            envvar="OPERATOR_NAMESPACE",
            help="Namespace of the operator: LAS and SGXPlugin run here unless their spec says.",
        ),
    ] = "enclave-system",
    kubeconfig: Annotated[
        str | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig outside a cluster.")
    ] = None,
    metrics_port: Annotated[
        int, typer.Option(envvar="METRICS_PORT", help="Port of /metrics (0: off).")
    ] = 8080,
    cas_resync: Annotated[
        float,
        typer.Option(
            envvar="CAS_RESYNC",
            help="Seconds between version checks of each CAS that policies name (a CAS has no"
            " watch: this is how a restarted CAS gets its policies again).",
        ),
    ] = 30.0,
    auto_update_interval: Annotated[
        float,
        typer.Option(
            envvar="AUTO_UPDATE_INTERVAL",
            min=1.0,
            help="Seconds between registry checks of each LAS and SGXPlugin with autoUpdate"
            " (doubling, up to 10 minutes, while its registry is unreachable).",
        ),
    ] = 300.0,
    registry_ca: Annotated[
        str | None,
        typer.Option(
            envvar="REGISTRY_CA",
            help="CA file that registries' certificates may also be signed by (autoUpdate"
            " reads tags over TLS; the system's CAs are trusted too).",
        ),
    ] = None,
    webhook_config: Annotated[
        str,
        typer.Option(
            envvar="WEBHOOK_CONFIG",
            help="ConfigMap (operator's namespace) with the SGX injection webhook's settings;"
            " without it the webhook is off.",
        ),
    ] = "enclave-operator-webhook",
    webhook_address: Annotated[
        str,
        typer.Option(
            envvar="WEBHOOK_ADDRESS",
            help="Out of a cluster: the address the API server reaches this process at"
            " (the webhook listens there, on a free port).",
        ),
    ] = "127.0.0.1",
    webhook_port: Annotated[
        int | None,
        typer.Option(
            envvar="WEBHOOK_PORT",
            help="Port the webhook listens on [default: the settings' port behind a Service,"
            " else a free one].",
        ),
    ] = None,
    leader_election: Annotated[
        bool,
        typer.Option(
            envvar="LEADER_ELECTION",
            help="Act only while holding the Lease enclave-operator-leader in the operator's"
            " namespace (for more than one replica); the webhook answers on every replica.",
        ),
    ] = False,
    sync_within: Annotated[
        float,
        typer.Option(
            envvar="SYNC_WITHIN",
            min=1.0,
            help="Seconds the first listing of nodes and pods may take before the liveness"
            " probe fails (a listing that keeps failing, e.g. for want of RBAC, would otherwise"
            " leave the workers waiting behind a healthy probe).",
        ),
    ] = 120.0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            envvar="LOG_FORMAT",
            help="json: one object per line, with the resource's"
            " kind, namespace and name on each line about one.",
        ),
    ] = LogFormat.TEXT,
) -> None:
    """Reconcile CAS, LAS and SGXPlugin resources into Helm releases, and register
    SignedPolicy and EncryptedPolicy resources in their CAS, until stopped."""
    from enclave_operator.entry import without_client_library

    without_client_library()
    from enclave_operator.autoupdate.controller import AutoUpdater
    from enclave_operator.autoupdate.pulls import PullReporter
    from enclave_operator.controller.run import run as run_operator
    from enclave_operator.kube import Kube
    from enclave_operator.policies.controller import PolicyController
    from enclave_operator.webhook.process import WebhookProcess, command
    from enclave_operator.webhook.runner import read_settings

    def webhook(kube: Kube, operator_ns: str, _cas: object) -> WebhookProcess:
        config = kubeconfig or os.environ.get("KUBECONFIG")
        argv = command(
            operator_ns,
            webhook_config,
            webhook_address,
            webhook_port,
            config,
            log_format.value,
            verbose,
        )
        return WebhookProcess(argv, lambda: read_settings(kube, operator_ns, webhook_config))

    run_operator(
        operator_namespace,
        namespace or [],
        kubeconfig or os.environ.get("KUBECONFIG"),
        verbose,
        metrics_port=metrics_port,
        extensions=[
            functools.partial(PolicyController, resync=cas_resync),
            webhook,
            functools.partial(AutoUpdater, interval=auto_update_interval, ca_file=registry_ca),
            PullReporter,
        ],
        log_format=log_format.value,
        leader_election=leader_election,
        sync_within=sync_within,
    )
