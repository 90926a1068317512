"""`enclavectl` when things go wrong: bad flags, an unreachable cluster, missing permissions,
a namespace stuck terminating, no SGX plugin, a timeout. One line each, nothing left behind."""

from __future__ import annotations

import json
import os
import signal

from enclave_operator.devcluster import processes
from tests.integration.install_env import NS, WEBHOOK, Env, leftovers, one_line
from tests.integration.waiting import wait_for


def nothing_installed(own: Env) -> None:
    left = leftovers(own, NS)
    assert not any(left.values()), {k: v for k, v in left.items() if v}


def test_bad_input_is_one_line_and_changes_nothing(own: Env, tmp_path):
    unknown = own.ctl("install", "--simulaton")
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == (
        "error: No such option: --simulaton (Possible options: --simulation)"
        " (see `enclavectl install --help`)"
    )

    dead = tmp_path / "dead.kubeconfig"
    port = processes.free_port()
    closed = f"https://127.0.0.1:{port}"
    dead.write_text(own.dev.kubeconfig.read_text().replace(own.server, closed))
    for command in (
        ["install", "--simulation"],
        ["uninstall"],
        ["status"],
        ["check"],
        ["precheck"],
    ):
        one_line(
            own.ctl(*command, KUBECONFIG=str(dead)),
            f"error: cannot reach the cluster at https://127.0.0.1:{port}: Connection refused",
        )

    own.cluster.kubectl("create", "serviceaccount", "nobody", "-n", "default")
    nobody = own.token_kubeconfig(tmp_path / "nobody.kubeconfig", "default", "nobody")
    line = one_line(
        own.ctl("install", "--simulation", KUBECONFIG=str(nobody)),
        "error: missing permissions to install: cannot list nodes, list secrets,",
    )
    assert "create customresourcedefinitions.apiextensions.k8s.io" in line
    assert line.endswith("(installing needs cluster-admin rights)")
    one_line(own.ctl("status", KUBECONFIG=str(nobody)), "error: missing permission: ")
    one_line(
        own.ctl("uninstall", KUBECONFIG=str(nobody)), "error: missing permissions to uninstall"
    )

    # a namespace that cannot finish terminating: a ConfigMap holds it with a finalizer
    own.cluster.kubectl("create", "namespace", "stuck")
    own.cluster.kubectl("create", "configmap", "hold", "-n", "stuck")
    own.cluster.kubectl(
        "patch",
        "configmap",
        "hold",
        "-n",
        "stuck",
        "--type=merge",
        "-p",
        '{"metadata":{"finalizers":["example.com/hold"]}}',
    )
    own.cluster.kubectl("delete", "namespace", "stuck", "--wait=false")
    try:
        one_line(
            own.ctl("install", "--simulation", "-n", "stuck"),
            "error: namespace stuck is being deleted (Terminating)",
        )
    finally:
        own.cluster.kubectl(
            "patch",
            "configmap",
            "hold",
            "-n",
            "stuck",
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
        )

    # no SGX device plugin: without its resource on any node, install suggests --simulation
    nodes = [n["metadata"]["name"] for n in own.json("get", "nodes")["items"]]
    epc = "/status/{}/sgx.intel.com~1epc"
    for node in nodes:
        ops = [{"op": "remove", "path": epc.format(f)} for f in ("capacity", "allocatable")]
        own.cluster.kubectl(
            "patch", "node", node, "--subresource=status", "--type=json", "-p", json.dumps(ops)
        )
    try:
        line = one_line(own.ctl("install"), "error: no SGX device plugin found")
        assert "enclavectl install --simulation" in line
        assert own.ctl("precheck").returncode == 1
    finally:
        for node in nodes:
            ops = [
                {"op": "add", "path": epc.format(f), "value": "128Mi"}
                for f in ("capacity", "allocatable")
            ]
            own.cluster.kubectl(
                "patch", "node", node, "--subresource=status", "--type=json", "-p", json.dumps(ops)
            )
    precheck = own.ctl("precheck")
    assert precheck.returncode == 0
    assert "install would use Intel (sgx.intel.com/epc, 3 nodes)" in precheck.stdout
    nothing_installed(own)


def test_a_failed_install_removes_what_it_created(own: Env):
    # with SGX (Intel detected) and the operator as a Deployment, which kwok never runs:
    # the services cannot become HEALTHY, so the install times out and rolls back
    failed = own.ctl("install", "--timeout", "3s")
    assert failed.returncode == 1
    out = failed.stderr
    assert "SGX device plugin: Intel (sgx.intel.com/epc on 3/3 nodes)" in out
    assert "note: this is the dev cluster" in out
    assert "install failed: not HEALTHY after 3s: SGXPlugin enclave: no status yet" in out
    assert "nothing of this install is left" in out
    assert out.strip().splitlines()[-1].startswith("error: install failed and was rolled back")
    nothing_installed(own)


def test_uninstall_without_the_operator_needs_force(own: Env):
    install = own.ctl("install", "--simulation", "--local-operator", "--timeout", "2m")
    assert install.returncode == 0, install.stderr
    pid = int((own.dev.directory / "operator.pid").read_text())
    wait_for(lambda: own.exists("mutatingwebhookconfiguration", WEBHOOK), bool, 60, "webhook")
    # the operator and all it started (its webhook process, its helm server) are gone at once,
    # as with a lost machine: nobody handles the finalizers or removes the configuration
    os.killpg(pid, signal.SIGKILL)
    wait_for(lambda: processes.alive(pid), lambda a: not a, 10, "the operator gone")
    assert own.exists("mutatingwebhookconfiguration", WEBHOOK), "killed: it could not remove it"
    stuck = own.ctl("uninstall", "--timeout", "2s")
    assert stuck.returncode == 1
    assert (
        stuck.stderr.strip()
        .splitlines()[-1]
        .startswith("error: still present after 2s: CAS enclave, LAS enclave, SGXPlugin enclave")
    )
    forced = own.ctl("uninstall", "--timeout", "2s", "--force")
    assert forced.returncode == 0, forced.stderr
    assert "--force: uninstalled release enclave-system/cas-enclave" in forced.stderr
    assert f"deleted MutatingWebhookConfiguration {WEBHOOK}" in forced.stderr
    nothing_installed(own)
