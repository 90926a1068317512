"""Which CAS a Secret outside its release re-queues: its own certificate and CA, and the client
certificates issued from that CA (the operator's, its LAS's), so that a change is seen at once
instead of at the next resync."""

from __future__ import annotations

from typing import Any

from enclave_operator.api.kinds import CAS
from enclave_operator.controller.caches import Caches, cached, cr_index
from enclave_operator.controller.requeue import serving_certificate


def caches_with(*cas: tuple[str, str]) -> Caches:
    caches = Caches()
    caches.bind({cr_index(CAS): {key: [{}] for key in cas}})
    return caches


def names(caches: Caches, namespace: str, secret: str) -> list[str]:
    return sorted(key.name for key in serving_certificate(caches, namespace, secret))


def test_a_cas_is_requeued_by_its_certificates_and_those_of_its_ca():
    caches = caches_with(("ns", "x"), ("ns", "y"), ("other", "x"))
    assert names(caches, "ns", "cas-x-tls") == ["x"]
    assert names(caches, "ns", "cas-x-ca") == ["x"]
    assert names(caches, "ns", "las-x-client") == ["x"]
    # the operator's client certificate may come from either CA of the namespace
    assert names(caches, "ns", "enclave-operator-cas-client") == ["x", "y"]
    assert names(caches, "ns", "something-else") == []
    assert names(caches, "third", "cas-x-tls") == []


def test_nothing_before_the_caches_are_filled():
    assert list(serving_certificate(Caches(), "ns", "cas-x-tls")) == []


def test_cached_objects_drop_managed_fields_only() -> None:
    body: dict[str, Any] = {
        "metadata": {"name": "d", "managedFields": [{"manager": "helm"}], "labels": {"a": "b"}},
        "spec": {"replicas": 1},
    }
    kept = cached(body)
    assert kept == {"metadata": {"name": "d", "labels": {"a": "b"}}, "spec": {"replicas": 1}}
    assert "managedFields" in body["metadata"]  # the event's body is not changed
    assert cached({"metadata": {"name": "x"}}) == {"metadata": {"name": "x"}}
