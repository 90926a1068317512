"""Renewing the CAS's certificate: decided from the figures when its CA is at hand, issued by
that CA with the same names, and trusted by what already trusted the old one."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509

from enclave_operator.figures.certificate import RENEWABLE_REASON, certificate_figures
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
