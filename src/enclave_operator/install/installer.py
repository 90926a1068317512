"""`enclavectl install`: everything or nothing.

Checks come first (release, permissions, namespace, SGX plugin), so that bad input changes
nothing. Each step then records what it created; when a later step fails or the resources do
not become HEALTHY in time, exactly that is removed again, newest first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client
from rich.console import Console

from enclave_operator.api.crds import crd
from enclave_operator.api.kinds import ALL_KINDS, Kind
from enclave_operator.install import plugins, progress, tls
from enclave_operator.install.cluster import CLIError, Cluster
from enclave_operator.install.helmcli import RELEASE, Helm, chart_dir
from enclave_operator.install.local import LocalOperator, dev_cluster_of
from enclave_operator.install.options import CR_NAME, Options, chart_values, our_crs
from enclave_operator.install.remove import OURS, Remover, cr_path, crd_path
from enclave_operator.install.summary import Row, describe, row

Say = Callable[[str], None]
WEBHOOK_CHECK = ("create", "admissionregistration.k8s.io", "mutatingwebhookconfigurations", None)


@dataclass
class Created:
    namespace: bool = False
    crds: list[Kind] = field(default_factory=list)
    secret: bool = False
    release: bool = False
    operator: bool = False


class Installer:
    def __init__(self, cluster: Cluster, opts: Options, say: Say) -> None:
        self.cluster, self.opts, self.say = cluster, opts, say
        self.ns_path = f"/api/v1/namespaces/{opts.namespace}"
        self.local = LocalOperator.for_cluster(cluster)
        self.created = Created()

    # --- checks: nothing is changed before all of them pass ---

    def check_domains(self) -> None:
        for domain in self.opts.domains:
            if why := tls.invalid_domain(domain):
                raise CLIError(f"--domain: {why}")

    def permissions(self) -> None:
        ns = self.opts.namespace
        checks: list[tuple[str, str, str, str | None]] = [
            ("list", "", "nodes", None),
            ("list", "", "secrets", None),  # helm finds existing releases
            ("get", "", "namespaces", None),
            ("create", "", "namespaces", None),
            ("create", "apiextensions.k8s.io", "customresourcedefinitions", None),
            ("update", "apiextensions.k8s.io", "customresourcedefinitions", None),
            ("delete", "apiextensions.k8s.io", "customresourcedefinitions", None),
            ("create", "rbac.authorization.k8s.io", "clusterroles", None),
            ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
            ("create", "", "serviceaccounts", ns),
            ("create", "", "secrets", ns),
            ("create", "services.enclave.dev", "cas", ns),
            ("create", "base.enclave.dev", "las", None),
            ("create", "base.enclave.dev", "sgxplugins", None),
        ]
        if not self.opts.local_operator:
            checks.append(("create", "apps", "deployments", ns))
        if self.opts.webhook:  # helm (in-cluster) or the local operator creates it
            checks.append(WEBHOOK_CHECK)
        if missing := self.cluster.missing(checks):
            raise CLIError(
                f"missing permissions to install: cannot {', '.join(missing)}"
                " (installing needs cluster-admin rights)"
            )

    def check_terminating(self, namespace: dict[str, Any] | None) -> None:
        if namespace and (namespace.get("status") or {}).get("phase") == "Terminating":
            raise CLIError(
                f"namespace {self.opts.namespace} is being deleted (Terminating): wait until it"
                " is gone, or choose another --namespace"
            )

    def plugin(self) -> tuple[plugins.Plugin | None, dict[str, str]]:
        if self.opts.simulation:
            self.say("simulation: no SGX device plugin needed, no SGX resources requested")
            return None, {}
        nodes = self.cluster.nodes()
        if self.opts.resource_key:
            found = plugins.plugin_for(self.opts.resource_key)
            if not plugins.nodes_with(nodes, found.resource):
                raise CLIError(f"--resource-key: no node advertises {found.resource}")
        else:
            detected = plugins.detect(nodes)
            if detected is None:
                keys = ", ".join(p.resource for p in plugins.PLUGINS)
                raise CLIError(
                    f"no SGX device plugin found: no node advertises {keys}; install one, or"
                    " run without SGX hardware: enclavectl install --simulation"
                )
            found = detected
        count = len(plugins.nodes_with(nodes, found.resource))
        self.say(
            f"SGX device plugin: {found.vendor} ({found.resource} on {count}/{len(nodes)} nodes)"
        )
        return found, plugins.sgx_node_selector(nodes, found.resource)

    # --- the install ---

    def run(self, helm: Helm) -> bool:
        """Install, or change nothing when already installed here (False then)."""
        self.check_domains()
        chart = chart_dir(self.opts.chart)
        self.permissions()
        namespace = self.cluster.find(self.ns_path)
        if self.already_installed(helm):
            return False
        self.check_terminating(namespace)
        plugin, selector = self.plugin()
        if not self.opts.local_operator and dev_cluster_of(self.cluster) is not None:
            self.say(
                "note: this is the dev cluster, whose nodes run no containers: the operator's"
                " pod will not really run (--local-operator runs it as a local process)"
            )
        try:
            self._create(
                helm, chart, namespace is not None, chart_values(self.opts, plugin, selector)
            )
            self._wait()
        except (CLIError, client.ApiException, KeyboardInterrupt) as e:
            reason = str(e) if isinstance(e, CLIError) else f"{type(e).__name__} {e}".strip()
            self.say(f"[red]install failed:[/red] {reason}")
            self.say("removing what this install created ...")
            self.clean_up(helm)
            raise CLIError(f"install failed and was rolled back: {reason}") from None
        return True

    def already_installed(self, helm: Helm) -> bool:
        """One installation per cluster: the same one is fine (a stopped local operator is
        started again), any other is an error."""
        releases = helm.releases()
        if not releases:
            return False
        name, ns, status = (releases[0].get(k) for k in ("name", "namespace", "status"))
        if ns != self.opts.namespace or status != "deployed":
            raise CLIError(
                f"already installed in namespace {ns} (release {name}, {status}): one"
                " installation per cluster; `enclavectl uninstall` removes it"
            )
        self.say(f"already installed in namespace {ns} (release {name}); nothing changed")
        if self.opts.local_operator:
            self.start_local_operator()
        return True

    def _create(self, helm: Helm, chart: Path, ns_exists: bool, values: Any) -> None:
        if not ns_exists:
            body = {"metadata": {"name": self.opts.namespace, "labels": OURS}}
            self.cluster.request("POST", "/api/v1/namespaces", body)
            self.created.namespace = True
            self.say(f"created namespace {self.opts.namespace}")
        self._apply_crds()
        secrets = tls.tls_secrets(self.opts.domains, CR_NAME, self.opts.namespace)
        for s in secrets:
            self.cluster.delete(f"{self.ns_path}/secrets/{s['metadata']['name']}")
            self.cluster.request("POST", f"{self.ns_path}/secrets", s)
            self.created.secret = True
        names = tls.san_names(self.opts.domains, CR_NAME, self.opts.namespace)
        serving, ca, operator, las = tls.secret_names(CR_NAME)
        self.say(
            f"CAS TLS certificate in Secret {serving} for {', '.join(names)} (its CA in {ca});"
            f" client certificates: the operator's in Secret {operator}, the LAS's in {las}"
        )
        helm.install(self.opts.namespace, chart, values)
        self.created.release = True
        self.say(f"installed chart {chart.name} as release {self.opts.namespace}/{RELEASE}")
        self.say(
            "SGX injection webhook: for pods labelled enclave.dev/inject=true"
            if self.opts.webhook
            else "SGX injection webhook: off (--no-webhook)"
        )
        if self.opts.local_operator:
            self.start_local_operator()

    def start_local_operator(self) -> None:
        if (pid := self.local.pid()) is not None:
            self.say(f"local operator already running (pid {pid}, log {self.local.log})")
            return
        pid = self.local.start(self.opts.namespace)
        self.created.operator = True
        self.say(f"local operator started (pid {pid}, log {self.local.log})")

    def _apply_crds(self) -> None:
        """Create or replace: CRDs left by an earlier version are brought up to date."""
        for kind in ALL_KINDS:
            body = crd(kind)
            current = self.cluster.find(crd_path(kind))
            if current is None:
                self.cluster.request("POST", crd_path(kind).rsplit("/", 1)[0], body)
                self.created.crds.append(kind)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.cluster.request("PUT", crd_path(kind), body)

        def established() -> bool:
            for kind in ALL_KINDS:
                status = (self.cluster.find(crd_path(kind)) or {}).get("status") or {}
                conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
                if conditions.get("Established") != "True":
                    return False
            return True

        if not self.cluster.wait(established, 60):
            raise CLIError("the CRDs were not Established within 60s")
        made = len(self.created.crds)
        self.say(f"CRDs ready ({made} created, {len(ALL_KINDS) - made} updated)")

    def fetch(self) -> Sequence[Row]:
        return [
            row(kind, self.cluster.find(cr_path(kind, body)) or body)
            for kind, body in our_crs(self.opts.namespace)
        ]

    def operator_note(self) -> str | None:
        """How the operator is doing; a CLIError when the local one has died."""
        if self.opts.local_operator:
            if (pid := self.local.pid()) is None:
                raise CLIError(self.local.died())
            return f"operator: local process {pid}"
        name = f"{RELEASE}-operator"
        path = f"/apis/apps/v1/namespaces/{self.opts.namespace}/deployments/{name}"
        available = ((self.cluster.find(path) or {}).get("status") or {}).get("availableReplicas")
        return f"operator: Deployment {name} {available or 0}/1 available"

    def _wait(self) -> None:
        self.say(f"waiting up to {self.opts.timeout:.0f}s for the services to be HEALTHY")
        console = Console(stderr=True, highlight=False, soft_wrap=True)
        verdict, _ = progress.wait_healthy(
            self.fetch, self.opts.timeout, console, self.operator_note
        )
        if not verdict.ok:
            raise CLIError(
                f"not HEALTHY after {self.opts.timeout:.0f}s: "
                + "; ".join(describe(r) for r in verdict.waiting)
            )

    def clean_up(self, helm: Helm) -> None:
        """Undo what ``created`` records, newest first; the operator must outlive the CRs."""
        remover = Remover(
            self.cluster, helm, self.local, self.say, self.opts.namespace, timeout=60, force=True
        )
        c = self.created
        if c.release:
            existing = [
                (k, b) for k, b in our_crs(self.opts.namespace) if self.cluster.find(cr_path(k, b))
            ]
            remover.remove_crs(existing)
            helm.uninstall(RELEASE, self.opts.namespace)
            self.say(f"uninstalled release {self.opts.namespace}/{RELEASE}")
        if c.operator and (pid := self.local.stop()):
            self.say(f"stopped the local operator (pid {pid})")
        if c.release:
            remover.remove_webhook()
        remover.remove_crds(c.crds)
        if c.secret and not c.namespace:
            for name in tls.secret_names(CR_NAME):
                self.cluster.delete(f"{self.ns_path}/secrets/{name}")
        if c.namespace:
            remover.remove_namespaces([self.opts.namespace])
        self.say("nothing of this install is left")
