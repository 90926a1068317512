"""The webhook as users run it: `enclavectl operator run` reading the chart's ConfigMap; and
certificate rotation while pods are created without pause."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from enclave_operator.webhook.runner import WebhookRunner
from tests.integration.operator_process import OperatorProcess
from tests.integration.waiting import wait_for
from tests.integration.webhook_env import injected, pod, running, settings_for, wait_registered


@pytest.fixture
def operator_ns(api_client: client.ApiClient) -> Iterator[str]:
    core: Any = client.CoreV1Api(api_client)
    name = f"op-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    core.delete_namespace(name)


def test_operator_process_serves_the_chart_settings_and_cleans_up(
    cluster, api_client, namespace, operator_ns, tmp_path, monkeypatch
):
    core = client.CoreV1Api(api_client)
    admission = client.AdmissionregistrationV1Api(api_client)
    name = f"t-{uuid.uuid4().hex[:8]}-webhook"
    settings = {"simulation": True, "configuration": name, "casCAConfigMap": ""}
    core.create_namespaced_config_map(
        operator_ns, {"metadata": {"name": name}, "data": {"settings.json": json.dumps(settings)}}
    )
    operator = OperatorProcess(cluster.kubeconfig, operator_ns, tmp_path / "operator.log")
    monkeypatch.setenv("WEBHOOK_CONFIG", name)  # what the chart's Deployment sets
    operator.start()
    try:
        wait_for(
            lambda: [
                c
                for c in admission.list_mutating_webhook_configuration().items
                if c.metadata.name == name
            ],
            bool,
            60,
            "the operator's configuration",
        )
        wait_registered(core, namespace)
        core.create_namespaced_pod(namespace, pod("sim"))
        back = core.read_namespaced_pod("sim", namespace)
        assert injected(back)["mode"] == "simulation"
        assert back.spec.containers[0].resources.limits is None
    finally:
        operator.stop()
    names = [c.metadata.name for c in admission.list_mutating_webhook_configuration().items]
    assert name not in names, operator.tail()


def test_a_local_operator_killed_alone_leaves_no_configuration(
    cluster, api_client, operator_ns, tmp_path, monkeypatch
):
    """SIGKILL gives the operator no chance to clean up; its webhook process gets SIGTERM from
    the kernel (parent death) and removes the configuration, which with failurePolicy Fail
    would otherwise block every labelled pod."""
    core = client.CoreV1Api(api_client)
    admission = client.AdmissionregistrationV1Api(api_client)
    name = f"t-{uuid.uuid4().hex[:8]}-webhook"
    settings = {"simulation": True, "configuration": name, "casCAConfigMap": ""}
    core.create_namespaced_config_map(
        operator_ns, {"metadata": {"name": name}, "data": {"settings.json": json.dumps(settings)}}
    )

    def names() -> list[str]:
        return [c.metadata.name for c in admission.list_mutating_webhook_configuration().items]

    operator = OperatorProcess(cluster.kubeconfig, operator_ns, tmp_path / "operator.log")
    monkeypatch.setenv("WEBHOOK_CONFIG", name)
    operator.start()
    try:
        wait_for(names, lambda n: name in n, 60, "the operator's configuration")
        operator.kill9()
        wait_for(names, lambda n: name not in n, 30, "the configuration removed")
    finally:
        operator.stop()


def test_rotation_while_pods_are_created_fails_no_admission(
    cluster, api_client, namespace, operator_ns
):
    """Short lifetimes: the CA is replaced every few seconds. Pods are created one after
    another until two CA changes have been seen; every one must be admitted and injected."""
    core = client.CoreV1Api(api_client)
    admission = client.AdmissionregistrationV1Api(api_client)
    settings = settings_for(cert_validity=8, ca_validity=16, propagation=2, cas_ca_configmap="")
    runner = WebhookRunner(operator_ns, settings=settings, kubeconfig=cluster.kubeconfig)
    with running(runner):
        wait_registered(core, namespace)
        bundles: set[bytes] = set()
        created = failed = 0
        for i in range(100_000):  # a bound, never reached: ≈ 3 rotations take ≈ 25 s
            body = pod(f"r-{i}", annotations={"enclave.dev/plugin": "intel"})
            try:
                p = core.create_namespaced_pod(namespace, body, dry_run="All")
                created += injected(p) is not None
            except client.ApiException as e:
                failed += 1
                print(e.body)
            hook = admission.read_mutating_webhook_configuration(settings.configuration)
            bundle = base64.b64decode(hook.webhooks[0].client_config.ca_bundle or "")
            if bundle:
                bundles.add(bundle.split(b"-----END CERTIFICATE-----")[0])
            if len(bundles) >= 3:
                break
        assert len(bundles) >= 3, "two CA rotations happened"
        assert failed == 0
        assert created == i + 1
