"""The injection webhook through the real API server's admission chain: pods created, read
back, scheduled by the real scheduler; pods outside the opt-in never sent; the webhook down;
a stop that lands while the runner waits for the API server."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
from kubernetes import client

from enclave_operator.devcluster.nodes import SGXFlavour
from enclave_operator.webhook.runner import WebhookRunner
from tests.integration.slow_proxy import SlowProxy
from tests.integration.webhook_env import (
    injected,
    kwok_nodes,
    pod,
    running,
    scheduled_on,
    settings_for,
    wait_registered,
)

CA_PEM = "-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n"


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def operator_ns(core) -> Iterator[str]:
    """The operator's namespace (excluded from injection) holds the webhook's certificate."""
    name = f"op-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


@pytest.fixture
def webhook(cluster, core, namespace, operator_ns) -> Iterator[WebhookRunner]:
    """The runner as a local operator runs it: by URL on loopback, its own configuration.
    The CAS CA comes from a Secret in the test's namespace."""
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "cas-t-tls"},
            "data": {"ca.crt": base64.b64encode(CA_PEM.encode()).decode()},
        },
    )
    settings = settings_for(cas_ca_secret="cas-t-tls", cas_ca_namespace=namespace)
    with running(WebhookRunner(operator_ns, settings=settings, kubeconfig=cluster.kubeconfig)) as r:
        wait_registered(core, namespace)
        yield r


def counts(runner: WebhookRunner) -> dict[str, int]:
    assert runner.server is not None
    return dict(runner.server.admission.counts)


def test_labelled_pod_gets_the_intel_injection_and_an_sgx_node(core, namespace, webhook):
    created = core.create_namespaced_pod(namespace, pod("enclave"))
    back = core.read_namespaced_pod("enclave", namespace)
    assert back.metadata.annotations == created.metadata.annotations
    c = back.spec.containers[0]
    assert c.resources.limits == {
        "sgx.intel.com/epc": "10Mi",
        "sgx.intel.com/enclave": "1",
        "sgx.intel.com/provision": "1",
    }
    env = {e.name: e for e in c.env}
    assert env["ENCLAVE_HOST_IP"].value_from.field_ref.field_path == "status.hostIP"
    assert env["SCONE_LAS_ADDR"].value == "$(ENCLAVE_HOST_IP):18766"
    assert env["SCONE_CAS_ADDR"].value == "cas-enclave.enclave-system.svc:18765"
    assert env["SCONE_CAS_CA"].value == "/etc/enclave/cas-ca/ca.crt"
    tolerations = [t for t in back.spec.tolerations if t.key == "sgx.intel.com/epc"]
    assert len(tolerations) == 1
    summary = injected(back)
    assert summary is not None
    assert summary["plugin"] == "intel"
    node = core.read_node(scheduled_on(core, namespace, "enclave"))
    assert node.status.capacity.get("sgx.intel.com/epc"), "placed on an SGX node"
    # the CA the pod mounts, copied into its namespace
    from tests.integration.waiting import wait_for

    cm = wait_for(
        lambda: [
            m
            for m in core.list_namespaced_config_map(namespace).items
            if m.metadata.name == "enclave-cas-ca"
        ],
        bool,
        30,
        "the CAS CA copy",
    )
    assert cm[0].data == {"ca.crt": CA_PEM}


def test_unlabelled_pod_is_never_sent(core, namespace, webhook):
    before = counts(webhook)
    core.create_namespaced_pod(namespace, pod("plain", labelled=False))
    # a labelled pod after it: the webhook's count moves by exactly that one
    core.create_namespaced_pod(namespace, pod("marker"))
    after = counts(webhook)
    assert sum(after.values()) - sum(before.values()) == 1
    back = core.read_namespaced_pod("plain", namespace)
    assert back.spec.containers[0].resources.limits is None
    assert not back.spec.containers[0].env
    assert injected(back) is None


def test_own_limits_and_toleration_are_kept(core, namespace, webhook):
    own = {
        "name": "app",
        "image": "busybox",
        "resources": {"limits": {"sgx.intel.com/epc": "64Mi"}},
    }
    tol = {"key": "sgx.intel.com/epc", "operator": "Exists", "effect": "NoSchedule"}
    core.create_namespaced_pod(namespace, pod("own", containers=[own], tolerations=[tol]))
    back = core.read_namespaced_pod("own", namespace)
    assert back.spec.containers[0].resources.limits["sgx.intel.com/epc"] == "64Mi"
    assert back.spec.containers[0].resources.limits["sgx.intel.com/enclave"] == "1"
    assert [t.key for t in back.spec.tolerations].count("sgx.intel.com/epc") == 1


def test_bad_annotation_is_denied_naming_it(core, namespace, webhook):
    with pytest.raises(client.ApiException) as e:
        core.create_namespaced_pod(namespace, pod("bad", annotations={"enclave.dev/epc": "lots"}))
    assert e.value.status == 400
    assert "enclave.dev/epc" in e.value.body
    assert counts(webhook).get("error", 0) == 0


@pytest.mark.parametrize("flavour", [SGXFlavour.AZURE, SGXFlavour.ALIBABA])
def test_other_plugins_schedule_onto_their_tainted_nodes(core, namespace, webhook, flavour):
    with kwok_nodes(core, flavour) as (node,):
        name = f"on-{flavour.value}"
        core.create_namespaced_pod(
            namespace, pod(name, annotations={"enclave.dev/plugin": flavour.value})
        )
        assert scheduled_on(core, namespace, name) == node
        limits = core.read_namespaced_pod(name, namespace).spec.containers[0].resources.limits
        assert limits == (
            {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "10"}
            if flavour is SGXFlavour.AZURE
            else {"alibabacloud.com/sgx_epc_MiB": "10"}
        )
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)


def test_simulation_schedules_onto_a_node_without_sgx(core, namespace, webhook):
    assert webhook.server is not None
    admission = webhook.server.admission
    admission.settings = replace(admission.settings, simulation=True)
    with kwok_nodes(core, SGXFlavour.NONE) as (node,):
        selector = {"kubernetes.io/hostname": node}
        core.create_namespaced_pod(namespace, pod("sim", node_selector=selector))
        back = core.read_namespaced_pod("sim", namespace)
        assert back.spec.containers[0].resources.limits is None
        assert {e.name: e.value for e in back.spec.containers[0].env}["SCONE_MODE"] == "SIM"
        assert scheduled_on(core, namespace, "sim") == node


def test_webhook_down_fails_labelled_pods_only_and_stop_removes_the_configuration(
    cluster, core, namespace, api_client, operator_ns
):
    settings = settings_for()
    admission = client.AdmissionregistrationV1Api(api_client)
    with running(WebhookRunner(operator_ns, settings=settings, kubeconfig=cluster.kubeconfig)) as r:
        wait_registered(core, namespace)
        hook = admission.read_mutating_webhook_configuration(settings.configuration).webhooks[0]
        assert hook.failure_policy == "Fail"
        assert hook.reinvocation_policy == "IfNeeded"
        assert hook.timeout_seconds <= 5
        assert r.server is not None
        r.server.stop()  # the process is gone; its configuration is still there
        with pytest.raises(client.ApiException) as e:
            core.create_namespaced_pod(namespace, pod("refused"))
        assert "inject.enclave.dev" in e.value.body
        core.create_namespaced_pod(namespace, pod("plain", labelled=False))
    names = [c.metadata.name for c in admission.list_mutating_webhook_configuration().items]
    assert settings.configuration not in names


def test_a_stop_during_a_request_ends_the_runner_and_removes_its_configuration(
    cluster, core, namespace, api_client, operator_ns, tmp_path
):
    """The runner reaches the API server through a proxy that holds each answer back, and is
    stopped while one of its requests waits: it ends (``running`` checks) and its configuration
    is removed, and nothing of it reaches the API server afterwards."""
    settings = settings_for()
    admission = client.AdmissionregistrationV1Api(api_client)
    server = api_client.configuration.host
    with SlowProxy(server, delay=0.3) as proxy:
        slow = proxy.kubeconfig(cluster.kubeconfig, tmp_path / "slow.kubeconfig")
        with running(WebhookRunner(operator_ns, settings=settings, kubeconfig=slow)):
            wait_registered(core, namespace)
            proxy.wait_in_flight(60)  # its next tick's requests (every few seconds)
        names = [c.metadata.name for c in admission.list_mutating_webhook_configuration().items]
        assert settings.configuration not in names
        after = proxy.forwarded
        time.sleep(2)
        assert proxy.forwarded == after, "requests after the stop"
