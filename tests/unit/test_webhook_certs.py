"""Certificate rotation as a pure plan, the review answers, and the settings file."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509

from enclave_operator.install import plugins as install_plugins
from enclave_operator.webhook import certs
from enclave_operator.webhook.configuration import by_url, ca_bundle_patch, current_ca_bundle
from enclave_operator.webhook.server import Admission
from enclave_operator.webhook.settings import PLUGINS, Settings, SettingsError, detect, parse

S = Settings(cert_validity=300, ca_validity=900, propagation=10)
HOSTS = ["svc.ns.svc"]
T0 = dt.datetime.now(dt.UTC)


@pytest.fixture(autouse=True)
def _clock_starts_now():
    """The certificates are issued against the real clock: the simulated one starts with each
    test, not when the module was imported (a long session would put it minutes behind)."""
    global T0
    T0 = dt.datetime.now(dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def issuer_ok(m: certs.Material, ca_pem: bytes) -> bool:
    leaf = x509.load_pem_x509_certificate(m.cert)
    return certs._signed(leaf, x509.load_pem_x509_certificate(ca_pem))


def test_first_plan_makes_a_ca_and_a_certificate_for_the_hosts():
    m = certs.plan(certs.Material(), S, HOSTS, at(0), 0)
    assert issuer_ok(m, m.ca_cert)
    assert m.previous_ca == b""
    assert certs.plan(m, S, HOSTS, at(1), 100) == m, "nothing due: nothing changes"


def test_certificate_renewal_keeps_the_ca():
    m = certs.plan(certs.Material(), S, HOSTS, at(0), 0)
    later = certs.plan(m, S, HOSTS, at(250), 100)  # less than a third of 300 s left
    assert later.ca_cert == m.ca_cert
    assert later.cert != m.cert


def test_ca_rotation_trusts_both_until_the_new_one_has_propagated():
    first = certs.plan(certs.Material(), S, HOSTS, at(0), 0)
    # a serving certificate still good when the CA is due (the clock here is simulated)
    long = certs.StoredAuthority(first.ca_cert, first.ca_key, T0).issue(
        "x", hosts=HOSTS, validity=dt.timedelta(seconds=900)
    )
    m = certs.Material(first.ca_cert, first.ca_key, b"", long.cert, long.key)
    rotated = certs.plan(m, S, HOSTS, at(620), 1000)  # CA has < 300 of 900 s left
    assert rotated.ca_cert != m.ca_cert
    assert rotated.previous_ca == m.ca_cert, "the old CA stays in the bundle"
    assert rotated.cert == m.cert, "the serving certificate waits for the new CA to propagate"
    assert rotated.bundle == rotated.ca_cert + m.ca_cert
    still = certs.plan(rotated, S, HOSTS, at(0), 5)
    assert still == rotated
    switched = certs.plan(rotated, S, HOSTS, at(0), 11)
    assert issuer_ok(switched, rotated.ca_cert)
    assert switched.previous_ca == b""


def test_an_unverifiable_certificate_is_replaced_at_once():
    m = certs.plan(certs.Material(), S, HOSTS, at(0), 0)
    other = certs.plan(certs.Material(), S, HOSTS, at(0), 0)
    mixed = certs.Material(m.ca_cert, m.ca_key, b"", other.cert, other.key)
    fixed = certs.plan(mixed, S, HOSTS, at(1), 0)
    assert issuer_ok(fixed, m.ca_cert)


def test_new_hosts_get_a_new_certificate():
    m = certs.plan(certs.Material(), S, HOSTS, at(0), 0)
    assert certs.plan(m, S, ["127.0.0.1"], at(1), 100).cert != m.cert


def review(admission: Admission, request: object) -> Any:
    return admission.review(json.dumps({"request": request}).encode())["response"]


def test_review_answers_never_fail_open():
    seen: list[str] = []
    admission = Admission(Settings(), PLUGINS[2], seen.append)
    pod = {
        "metadata": {"labels": {"enclave.dev/inject": "true"}},
        "spec": {"containers": [{"name": "a"}]},
    }
    ok = review(admission, {"uid": "1", "namespace": "apps", "object": pod})
    assert ok["allowed"] is True
    assert ok["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(str(ok["patch"])))
    assert seen == ["apps"]
    bad = admission.review(b"not json")["response"]
    assert bad["allowed"] is False
    assert bad["status"]["code"] == 400
    pod["metadata"]["annotations"] = {"enclave.dev/plugin": "amd"}
    denied = review(admission, {"uid": "2", "namespace": "apps", "object": pod})
    assert denied["allowed"] is False
    assert "enclave.dev/plugin" in denied["status"]["message"]
    assert admission.counts == {"patched": 1, "malformed": 1, "denied": 1}


def test_dry_run_copies_nothing():
    seen: list[str] = []
    admission = Admission(Settings(), PLUGINS[2], seen.append)
    pod = {
        "metadata": {"labels": {"enclave.dev/inject": "true"}},
        "spec": {"containers": [{"name": "a"}]},
    }
    review(admission, {"uid": "1", "namespace": "apps", "object": pod, "dryRun": True})
    assert seen == []


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('{"plugni": "intel"}', "plugni"),
        ('{"plugin": "amd"}', "plugin"),
        ('{"timeoutSeconds": 31}', "timeoutSeconds"),
        ('{"lasPort": true}', "lasPort"),
        ('{"amounts": {"intel": {"sgx.intel.com/epc": "-1"}}}', "amounts.intel"),
        ('{"amounts": {"azure": {"sgx.intel.com/epc": "1"}}}', "amounts.azure"),
        ('{"failurePolicy": "Maybe"}', "failurePolicy"),
        ("[", "not JSON"),
    ],
)
def test_settings_errors_name_the_field(text, field):
    with pytest.raises(SettingsError, match=field):
        parse(text)


def test_settings_parse_and_amounts():
    amounts = {"azure": {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "32"}}
    s = parse(json.dumps({"simulation": True, "plugin": "azure", "amounts": amounts}))
    assert s.simulation
    assert s.amounts_of(PLUGINS[1]) == {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "32"}


def test_detection_matches_enclavectl_install():
    assert [p.resource for p in PLUGINS] == [p.resource for p in install_plugins.PLUGINS]
    both = [{"sgx.intel.com/epc": "128Mi"}, {"alibabacloud.com/sgx_epc_MiB": "128"}]
    assert detect(both) is PLUGINS[0]
    assert detect([{"sgx.intel.com/epc": "0"}]) is None


def test_configuration_selects_and_patches_only_the_bundle():
    conf = by_url(Settings(), "enclave-system", "https://127.0.0.1:1/mutate", b"CA")
    hook = conf["webhooks"][0]
    assert hook["objectSelector"] == {"matchLabels": {"enclave.dev/inject": "true"}}
    excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert excluded == ["enclave-system", "kube-system"]
    assert (hook["failurePolicy"], hook["reinvocationPolicy"]) == ("Fail", "IfNeeded")
    assert hook["timeoutSeconds"] <= 5
    assert current_ca_bundle(conf) == b"CA"
    assert current_ca_bundle({"webhooks": ca_bundle_patch(b"X")["webhooks"]}) == b"X"
