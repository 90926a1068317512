"""`enclavectl install` and `uninstall`: the chart, the CRDs and the default services."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from enclave_operator.cli.common import (
    DEFAULT_NAMESPACE,
    KubeconfigOption,
    NamespaceOption,
    TimeoutOption,
    err,
    one_line_errors,
    say,
)
from enclave_operator.install.cluster import CLIError, Cluster
from enclave_operator.install.helmcli import Helm
from enclave_operator.install.installer import Installer
from enclave_operator.install.local import LocalOperator
from enclave_operator.install.options import Options
from enclave_operator.install.remove import Remover


def _domains(values: list[str] | None) -> tuple[str, ...]:
    """--domain a --domain b, or --domain a,b."""
    names = (n.strip() for v in values or [] for n in v.split(","))
    return tuple(dict.fromkeys(n for n in names if n))


def install(
    domain: Annotated[
        list[str] | None,
        typer.Option(
            "--domain",
            help="Name under which clients reach the CAS client API, for its TLS certificate"
            " (with localhost and the CAS Service's names). Repeat or comma-separate.",
        ),
    ] = None,
    simulation: Annotated[
        bool, typer.Option("--simulation", help="No SGX hardware: request no SGX resources.")
    ] = False,
    namespace: NamespaceOption = DEFAULT_NAMESPACE,
    resource_key: Annotated[
        str | None,
        typer.Option(
            "--resource-key", help="SGX resource to request instead of the detected plugin's."
        ),
    ] = None,
    timeout: TimeoutOption = 300.0,
    local_operator: Annotated[
        bool,
        typer.Option(
            "--local-operator",
            help="Run the operator as a local process instead of a Deployment (dev cluster).",
        ),
    ] = False,
    image: Annotated[
        str | None, typer.Option("--image", help="Image of the operator and the services.")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option("--chart", help="Chart directory [default: the checkout's].")
    ] = None,
    webhook: Annotated[
        bool,
        typer.Option(
            "--webhook/--no-webhook",
            help="The SGX injection webhook for pods labelled enclave.dev/inject=true.",
        ),
    ] = True,
    ingress: Annotated[
        bool,
        typer.Option(
            "--ingress",
            help="An Ingress for the CAS client API at the first --domain, TLS passed through"
            " (ingress-nginx ssl-passthrough).",
        ),
    ] = False,
    kubeconfig: KubeconfigOption = None,
) -> None:
    """Install the operator, its CRDs and a default SGXPlugin, LAS and CAS; wait until HEALTHY.

    A second install changes nothing and says so (with --local-operator it restarts a local
    operator that is not running); `enclavectl uninstall` first to install anew.
    """
    opts = Options(
        namespace=namespace,
        domains=_domains(domain),
        simulation=simulation,
        resource_key=resource_key,
        timeout=timeout,
        local_operator=local_operator,
        image=image,
        chart=chart,
        webhook=webhook,
        ingress=ingress,
    )
    with one_line_errors():
        if ingress and not opts.domains:
            raise CLIError("--ingress needs --domain: the Ingress host is the first domain")
        cluster = Cluster.connect(kubeconfig)
        if not Installer(cluster, opts, say).run(Helm(cluster.kubeconfig)):
            return
    err.print(
        f"\n[green]enclave-operator is installed[/green] in namespace {namespace}:"
        " SGXPlugin, LAS and CAS are HEALTHY.\n"
        "  enclavectl status      what each resource is doing\n"
        "  enclavectl check       exit 0 while everything is HEALTHY\n"
        f"  enclavectl uninstall{'' if namespace == DEFAULT_NAMESPACE else f' -n {namespace}'}"
        "   remove everything again"
    )


def uninstall(
    namespace: NamespaceOption = DEFAULT_NAMESPACE,
    timeout: TimeoutOption = 120.0,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="When the operator cannot finish (it is not running), uninstall the services'"
            " releases and remove the finalizers without it.",
        ),
    ] = False,
    kubeconfig: KubeconfigOption = None,
) -> None:
    """Remove every CAS, LAS, SGXPlugin and policy (the operator uninstalls their releases),
    then the chart, the local operator, the CRDs and the namespace enclavectl created."""
    with one_line_errors():
        cluster = Cluster.connect(kubeconfig)
        local = LocalOperator.for_cluster(cluster)
        remover = Remover(cluster, Helm(cluster.kubeconfig), local, say, namespace, timeout, force)
        missing = cluster.missing(
            [
                ("list", "", "secrets", None),  # helm finds the releases
                ("delete", "apiextensions.k8s.io", "customresourcedefinitions", None),
                ("delete", "rbac.authorization.k8s.io", "clusterroles", None),
                ("delete", "services.enclave.dev", "cas", None),
                ("delete", "base.enclave.dev", "las", None),
                ("delete", "", "namespaces", None),
                ("delete", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", None),
            ]
        )
        if missing:
            raise CLIError(f"missing permissions to uninstall: cannot {', '.join(missing)}")
        found = remover.survey()
        if found.empty:
            say("nothing to uninstall: no enclave-operator release, CRD, resource or namespace")
            return
        remover.remove(found)
    err.print("[green]enclave-operator is uninstalled[/green]: nothing of it is left")
