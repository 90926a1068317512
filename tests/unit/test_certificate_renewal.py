"""Renewing the CAS's certificate: decided from the figures when its CA is at hand, issued by
that CA with the same names, and trusted by what already trusted the old one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from enclave_operator.controller.certificates import Certificates, view
from enclave_operator.figures.certificate import (
    RENEWABLE_REASON,
    certificate_figures,
    with_client,
)
from enclave_operator.pki import Authority, reissue
from enclave_operator.reconcile.decide import decide
from enclave_operator.reconcile.model import ActionKind, Condition, Status
from tests.unit.observations import healthy
from tests.unit.test_pki_strict import handshake

NOW = 1_800_000_000.0
DAY = 86400.0
HOSTS = ["cas.example.com", "localhost", "10.0.0.1"]


def test_a_certificate_due_with_its_ca_at_hand_is_renewing():
    f = certificate_figures("cas-x-tls", NOW + 10 * DAY, NOW, ca_not_after=NOW + 3000 * DAY)
    assert f.condition is not None
    assert f.condition[1] == RENEWABLE_REASON
    assert f.alert is None
    # a CA about to expire itself cannot help: install again
    f = certificate_figures("cas-x-tls", NOW + 10 * DAY, NOW, ca_not_after=NOW + 20 * DAY)
    assert f.condition is not None
    assert f.condition[1] == "ExpiresSoon"
    # an expired one with its CA at hand is renewed, and alerts until then
    f = certificate_figures("cas-x-tls", NOW - DAY, NOW, ca_not_after=NOW + 3000 * DAY)
    assert f.condition is not None
    assert f.condition[1] == RENEWABLE_REASON
    assert f.alert is not None


def test_renewing_is_decided_last_and_only_when_the_figures_say_so():
    renewing = Condition("CertificateValid", Status.FALSE, RENEWABLE_REASON, "expires soon")
    decision = decide(healthy(figures=(renewing,)))
    assert decision.action is not None
    assert decision.action.kind is ActionKind.RENEW_CERTIFICATE
    due = Condition("CertificateValid", Status.FALSE, "ExpiresSoon", "expires soon")
    assert decide(healthy(figures=(due,))).action is None
    assert decide(healthy()).action is None


def test_a_reissued_certificate_keeps_its_names_and_is_trusted_as_before(tmp_path: Path):
    authority = Authority("cas-ca", dt.timedelta(days=3650))
    old = authority.issue(HOSTS[0], hosts=HOSTS, validity=dt.timedelta(days=10))
    new = reissue(old.cert, authority.cert, authority.key, dt.timedelta(days=365))
    before = x509.load_pem_x509_certificate(old.cert)
    after = x509.load_pem_x509_certificate(new.cert)
    assert after.subject == before.subject
    san = x509.SubjectAlternativeName
    assert (
        after.extensions.get_extension_for_class(san).value
        == before.extensions.get_extension_for_class(san).value
    )
    left = after.not_valid_after_utc - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=364) < left <= dt.timedelta(days=365)
    assert new.key != old.key
    handshake(tmp_path, authority.cert, new.cert, new.key)  # strict, with the same CA
    client = authority.issue("enclave-operator", client=True, validity=dt.timedelta(days=1))
    renewed_client = reissue(client.cert, authority.cert, authority.key, dt.timedelta(days=365))
    usage = x509.load_pem_x509_certificate(renewed_client.cert).extensions
    assert (
        x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        in usage.get_extension_for_class(x509.ExtendedKeyUsage).value
    )


CA_AT_HAND = NOW + 3000 * DAY


def test_the_client_certificate_due_makes_the_cas_renewing_and_is_named():
    serving = certificate_figures("cas-x-tls", NOW + 200 * DAY, NOW, CA_AT_HAND)
    client = certificate_figures("enclave-operator-cas-client", NOW + 10 * DAY, NOW, CA_AT_HAND)
    merged = with_client(serving, client)
    assert merged.condition is not None
    status, reason, message = merged.condition
    assert (status, reason) == ("False", RENEWABLE_REASON)
    assert "enclave-operator-cas-client" in message
    assert "cas-x-tls" not in message  # the valid one is not mentioned
    assert merged.status == serving.status  # certificateNotAfter stays the CAS's own
    assert merged.recheck_at == client.recheck_at  # the earlier moment


def test_both_valid_reads_as_the_serving_certificate_and_both_due_name_both():
    serving = certificate_figures("cas-x-tls", NOW + 200 * DAY, NOW, CA_AT_HAND)
    client = certificate_figures("enclave-operator-cas-client", NOW + 300 * DAY, NOW, CA_AT_HAND)
    assert with_client(serving, client).condition == serving.condition
    expired = certificate_figures("cas-x-tls", NOW - DAY, NOW, None)
    soon = certificate_figures("enclave-operator-cas-client", NOW + 10 * DAY, NOW, None)
    merged = with_client(expired, soon)
    assert merged.condition is not None
    assert merged.condition[1] == "Expired"  # the worse of Expired and ExpiresSoon
    assert "cas-x-tls" in merged.condition[2]
    assert "enclave-operator-cas-client" in merged.condition[2]
    assert merged.alert == expired.alert


def test_an_expired_client_certificate_alerts_as_such():
    serving = certificate_figures("cas-x-tls", NOW + 200 * DAY, NOW, None)
    client = certificate_figures("enclave-operator-cas-client", NOW - DAY, NOW, None)
    merged = with_client(serving, client)
    assert merged.alert is not None
    assert merged.alert.startswith("operator client certificate expired")
    # a CAS without its own Secret (self-signed): the client certificate alone, no status field
    alone = with_client(certificate_figures("cas-x-tls", None, NOW), client)
    assert alone.condition == client.condition
    assert alone.status == {}
    assert alone.alert is not None
    assert alone.alert.startswith("operator client certificate expired")


def test_the_client_certificate_counts_only_when_the_cas_ca_issued_it():
    def secret(ca: str) -> dict[str, object]:
        return {"data": {"tls.crt": "", "ca.crt": ca}}

    certs = Certificates(None, lambda namespace, name: None)
    certs.items[("ns", "cas-x-ca")] = view(secret("QQ=="))
    certs.items[("ns", "enclave-operator-cas-client")] = view(secret("QQ=="))
    certs.items[("ns", "cas-y-ca")] = view(secret("Qg=="))
    assert certs.same_ca("ns", "enclave-operator-cas-client", "cas-x-ca")
    assert not certs.same_ca("ns", "enclave-operator-cas-client", "cas-y-ca")
    assert not certs.same_ca("ns", "enclave-operator-cas-client", "cas-z-ca")  # no such CA
    assert not certs.same_ca("other", "enclave-operator-cas-client", "cas-x-ca")
    assert view(secret(""))[1] == ""  # without ca.crt: never the same as anything
