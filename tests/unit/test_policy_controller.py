"""The policy controller's pure parts: casAddress resolution, the decision and the status."""

from __future__ import annotations

import pytest

from enclave_operator.policies.client import AddressError, base_url
from enclave_operator.policies.controller.address import resolve
from enclave_operator.policies.controller.model import (
    DELETE_GRACE,
    Act,
    Observation,
    Outcome,
    Probe,
    State,
    decide,
)
from enclave_operator.policies.controller.report import desired

UP = Probe("instance-a")
DOWN = Probe(None, "connection refused")
REGISTERED = {"state": "REGISTERED", "casInstance": "instance-a", "observedGeneration": 1}


def obs(**kw) -> Observation:
    base: dict[str, object] = {
        "generation": 1,
        "has_finalizer": True,
        "deleting_for": None,
        "status": {},
        "probe": UP,
    }
    return Observation(**{**base, **kw})


# casAddress


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("cas.example.com", "https://cas.example.com:8081"),
        ("cas.example.com:9443", "https://cas.example.com:9443"),
        ("https://10.1.2.3:8443/", "https://10.1.2.3:8443"),
        ("[::1]:8081", "https://[::1]:8081"),
    ],
)
def test_addresses_become_https_urls(address, url):
    assert base_url(address) == url


@pytest.mark.parametrize(
    "address", ["http://cas:8081", "cas:notaport", "https://cas:8081/v1", "https://u@cas", ""]
)
def test_unusable_addresses_are_refused(address):
    with pytest.raises(AddressError):
        base_url(address)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("cas-enclave:8081", ("https://cas-enclave.apps.svc:8081", ("apps", "enclave"))),
        ("cas-enclave.sys:8081", ("https://cas-enclave.sys.svc:8081", ("sys", "enclave"))),
        ("cas-enclave.sys.svc:9", ("https://cas-enclave.sys.svc:9", ("sys", "enclave"))),
        (
            "cas-enclave.sys.svc.cluster.local",
            ("https://cas-enclave.sys.svc:8081", ("sys", "enclave")),
        ),
        ("cas-other:8081", ("https://cas-other:8081", None)),  # no such CAS resource
        ("cas-enclave.example.com", ("https://cas-enclave.example.com:8081", None)),
        ("127.0.0.1:8081", ("https://127.0.0.1:8081", None)),
    ],
)
def test_a_cas_resource_service_name_resolves_to_its_fqdn(address, expected):
    known = {("apps", "enclave"), ("sys", "enclave")}
    target = resolve(address, "apps", lambda ns, name: (ns, name) in known)
    assert (target.url, target.cas) == expected


# decide: one row each, starting from a registered policy


def test_registered_here_needs_nothing():
    assert decide(obs(status=REGISTERED)).act is Act.NOTHING


def test_the_finalizer_comes_first():
    assert decide(obs(has_finalizer=False, probe=DOWN)).act is Act.ADD_FINALIZER


def test_a_new_policy_is_registered():
    assert decide(obs()).act is Act.REGISTER


def test_an_unreachable_cas_is_retried():
    d = decide(obs(probe=DOWN))
    assert d.act is Act.RETRY
    assert "connection refused" in d.reason


def test_a_registered_policy_stays_put_while_its_cas_is_unreachable():
    assert decide(obs(status=REGISTERED, probe=DOWN)).act is Act.RETRY


def test_a_cas_with_another_instance_gets_the_policy_again():
    d = decide(obs(status=REGISTERED, probe=Probe("instance-b")))
    assert d.act is Act.REGISTER
    assert "empty store" in d.reason


def test_a_refusal_is_final_for_its_generation():
    failed = {"state": "FAILED", "observedGeneration": 1}
    assert decide(obs(status=failed)).act is Act.NOTHING
    assert decide(obs(status={**failed, "observedGeneration": 0})).act is Act.REGISTER


def test_an_unusable_address_is_not_retried():
    assert decide(obs(address_error="spec.casAddress: bad", probe=Probe(None))).act is Act.NOTHING


def test_deleting_a_registered_policy_deletes_it_from_the_cas():
    assert decide(obs(status=REGISTERED, deleting_for=1.0)).act is Act.UNREGISTER


def test_deleting_without_our_finalizer_does_nothing():
    assert decide(obs(has_finalizer=False, deleting_for=1.0)).act is Act.NOTHING


@pytest.mark.parametrize(
    "status", [{}, {"state": "FAILED"}, {"state": "PENDING"}], ids=["new", "failed", "pending"]
)
def test_deleting_a_policy_never_registered_releases_it(status):
    d = decide(obs(status=status, deleting_for=1.0, probe=DOWN))
    assert d.act is Act.REMOVE_FINALIZER


def test_deleting_after_the_cas_lost_its_store_releases_it():
    d = decide(obs(status=REGISTERED, deleting_for=1.0, probe=Probe("instance-b")))
    assert d.act is Act.REMOVE_FINALIZER


def test_deleting_waits_for_an_unreachable_cas_then_gives_up():
    assert decide(obs(status=REGISTERED, deleting_for=1.0, probe=DOWN)).act is Act.RETRY
    d = decide(obs(status=REGISTERED, deleting_for=DELETE_GRACE, probe=DOWN))
    assert d.act is Act.REMOVE_FINALIZER
    assert "may remain" in d.reason


def test_deleting_gives_up_after_the_grace_even_when_the_cas_answers():
    """A CAS that answers but refuses the deletion (no operator identity) cannot hold the
    resource forever either."""
    d = decide(obs(status=REGISTERED, deleting_for=DELETE_GRACE + 1))
    assert d.act is Act.REMOVE_FINALIZER


# report: the status written after each kind of outcome

META = {
    "name": "demo",
    "digest": "ab" * 32,
    "signers": [{"signer": "x", "fingerprint": "sha256:0011223344556677"}],
}


def conditions(status):
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}


def test_registration_reports_what_the_cas_stored():
    o = obs()
    status = desired(o, decide(o), Outcome(True, "registered", registered=META), "u", "t")
    assert status is not None
    assert status["state"] == State.REGISTERED
    assert status["digest"] == META["digest"]
    assert status["policyName"] == "demo"
    assert status["signers"] == ["sha256:0011223344556677"]
    assert status["casInstance"] == "instance-a"
    assert status["observedGeneration"] == 1
    assert conditions(status)["Registered"][0] == "True"
    assert conditions(status)["CASReachable"][0] == "True"


def test_a_refusal_reports_the_cas_reason():
    o = obs()
    refusal = Outcome(False, "signature by sha256:ab does not verify", True, "SignatureInvalid")
    status = desired(o, decide(o), refusal, "u", "t")
    assert status is not None
    assert status["state"] == State.FAILED
    assert conditions(status)["Registered"] == (
        "False",
        "SignatureInvalid",
        "signature by sha256:ab does not verify",
    )


def test_no_answer_while_registering_is_pending():
    o = obs()
    status = desired(o, decide(o), Outcome(False, "timeout"), "u", "t")
    assert status is not None
    assert status["state"] == State.PENDING
    assert conditions(status)["CASReachable"][:2] == ("False", "Unreachable")


def test_an_unreachable_cas_is_pending_with_its_error():
    o = obs(probe=DOWN)
    status = desired(o, decide(o), None, "u", "t")
    assert status is not None
    assert status["state"] == State.PENDING
    assert "connection refused" in conditions(status)["Registered"][2]


def test_a_registered_policy_keeps_its_state_while_the_cas_is_away():
    o = obs(status=REGISTERED, probe=DOWN)
    status = desired(o, decide(o), None, "u", "t")
    assert status is not None
    assert status["state"] == State.REGISTERED
    assert conditions(status)["CASReachable"][0] == "False"


def test_an_unusable_address_fails():
    o = obs(address_error="spec.casAddress: 'http://x': https only", probe=Probe(None))
    status = desired(o, decide(o), None, "", "t")
    assert status is not None
    assert status["state"] == State.FAILED
    assert conditions(status)["Registered"][1] == "InvalidAddress"


@pytest.mark.parametrize("act_obs", [obs(has_finalizer=False), obs(deleting_for=1.0)])
def test_finalizer_steps_write_no_status(act_obs):
    assert desired(act_obs, decide(act_obs), None, "u", "t") is None


def test_an_unchanged_pass_writes_the_same_status():
    o = obs()
    first = desired(o, decide(o), Outcome(True, "registered", registered=META), "u", "t1")
    assert first is not None
    again = obs(status=first)
    second = desired(again, decide(again), None, "u", "t2")
    assert second == first  # lastTransitionTime kept: patch_status writes nothing


def test_the_signed_policy_sample_verifies():
    """The sample is what `enclavectl policy sign` writes: its policy validates and its
    signature verifies, so applying it against a CAS registers it."""
    from pathlib import Path

    import yaml

    from enclave_operator.policies import document, signing

    root = Path(__file__).resolve().parents[2]
    sample = yaml.safe_load((root / "config/samples/cas_v1beta1_signedpolicy.yaml").read_text())
    text = sample["spec"]["policy"]
    assert document.parse(text).name == "hello"
    for s in sample["spec"]["signatures"]:
        signing.verify(text.encode(), signing.Signature(s["signer"], s["signature"]))
