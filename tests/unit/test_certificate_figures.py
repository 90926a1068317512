"""A CAS's certificate expiry in its status, its CertificateValid condition, its alert and its
metric; and the moment the answer changes, when nothing else would say so."""

from __future__ import annotations

from prometheus_client import generate_latest

from enclave_operator.controller.metrics import OperatorMetrics
from enclave_operator.figures.certificate import (
    UNREADABLE,
    WARN_BEFORE,
    certificate_figures,
    with_certificate,
)
from enclave_operator.figures.compute import Figures
from enclave_operator.reconcile.conditions import cr_conditions
from enclave_operator.reconcile.model import Condition, Observation, ObservedRelease, Status

NOW = 1_800_000_000.0
DAY = 86400.0
SECRET = "cas-enclave-tls"


def test_a_certificate_far_from_expiry_is_valid_until_the_warning_starts():
    f = certificate_figures(SECRET, NOW + 100 * DAY, NOW)
    assert f.status == {"certificateNotAfter": "2027-04-25T08:00:00Z"}
    assert f.condition is not None
    assert f.condition[:2] == ("True", "Valid")
    assert f.alert is None
    assert f.recheck_at == NOW + 100 * DAY - WARN_BEFORE


def test_a_certificate_near_expiry_says_so_and_is_looked_at_again_when_it_expires():
    f = certificate_figures(SECRET, NOW + 10 * DAY, NOW)
    assert f.condition is not None
    status, reason, message = f.condition
    assert (status, reason) == ("False", "ExpiresSoon")
    assert SECRET in message
    assert "10 days" in message
    assert f.alert is None, "still serving: not an outage"
    assert f.recheck_at == NOW + 10 * DAY


def test_an_expired_certificate_alerts():
    f = certificate_figures(SECRET, NOW - 1, NOW)
    assert f.condition is not None
    assert f.condition[:2] == ("False", "Expired")
    assert f.alert is not None
    assert f.recheck_at is None
    merged = with_certificate(Figures({"version": "1"}, recheck_at=NOW + 5), f)
    assert merged.alerts == (f.alert,)
    assert merged.status["version"] == "1"
    assert merged.recheck_at == NOW + 5


def test_no_secret_or_an_unreadable_one():
    assert certificate_figures(SECRET, None, NOW).condition is None
    unreadable = certificate_figures(SECRET, UNREADABLE, NOW)
    assert unreadable.condition is not None
    assert unreadable.condition[:2] == ("False", "Unreadable")


def test_the_condition_joins_the_crs_conditions():
    f = with_certificate(Figures(), certificate_figures(SECRET, NOW + 10 * DAY, NOW))
    (kind, status, reason, message) = f.conditions[0]
    condition = Condition(kind, Status(status), reason, message)
    obs = Observation("uid", 1, False, True, ObservedRelease("r", "ns"), figures=(condition,))
    assert condition in cr_conditions(obs)


def test_the_expiry_is_a_metric():
    metrics = OperatorMetrics()
    status = certificate_figures(SECRET, NOW + 10 * DAY, NOW).status
    metrics.observe_cr("cas", "ns", "enclave", "HEALTHY", status)
    text = generate_latest(metrics.registry).decode()
    line = 'enclave_cas_certificate_not_after_seconds{name="enclave",namespace="ns"}'
    assert f"{line} {NOW + 10 * DAY:.1f}" in text or f"{line} {NOW + 10 * DAY:e}" in text
