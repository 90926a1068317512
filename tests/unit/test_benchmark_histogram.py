"""benchmarks/histogram: the webhook benchmark's figures come from kube-apiserver's buckets, so
the parsing, differencing and quantiles must be those PromQL would give."""

from __future__ import annotations

import math

import pytest
from benchmarks import histogram

METRIC = "apiserver_admission_webhook_admission_duration_seconds"


def scrape(ours: list[float], other: float = 7) -> str:
    """Cumulative counts for le 0.005, 0.025, 0.1, +Inf, split over rejected true/false, plus
    another webhook's series that must not be counted."""
    lines = [f"# TYPE {METRIC} histogram"]
    for le, n in zip(("0.005", "0.025", "0.1", "+Inf"), ours, strict=True):
        for rejected, part in (("false", n - 1), ("true", 1)):
            lines.append(
                f'{METRIC}_bucket{{name="inject.enclave.dev",operation="CREATE",'
                f'rejected="{rejected}",type="admit",le="{le}"}} {part}'
            )
        lines.append(f'{METRIC}_bucket{{name="other.example.com",le="{le}"}} {other}')
    lines.append(f'{METRIC}_count{{name="inject.enclave.dev"}} {ours[-1]}')
    return "\n".join(lines) + "\n"


def test_buckets_sum_the_matching_series_only():
    b = histogram.buckets(scrape([10, 20, 30, 30]), METRIC, {"name": "inject.enclave.dev"})
    assert b == {0.005: 10, 0.025: 20, 0.1: 30, math.inf: 30}


def test_absent_label_matches_empty():
    text = 'x_bucket{verb="POST",resource="pods",le="+Inf"} 5\n'
    text += 'x_bucket{verb="POST",resource="pods",subresource="binding",le="+Inf"} 9\n'
    assert histogram.buckets(text, "x", {"verb": "POST", "subresource": ""}) == {math.inf: 5}


def test_difference_and_quantiles_as_promql():
    before = histogram.buckets(scrape([10, 20, 30, 30]), METRIC, {"name": "inject.enclave.dev"})
    after = histogram.buckets(scrape([110, 120, 130, 130]), METRIC, {"name": "inject.enclave.dev"})
    phase = histogram.minus(after, before)
    assert histogram.count(phase) == 100
    assert histogram.quantile(0.5, phase) == pytest.approx(0.0025)  # halfway into [0, 5 ms]
    assert histogram.quantile(0.99, phase) == pytest.approx(0.00495)
    assert histogram.share_within(0.005, phase) == 1.0


def test_quantile_in_a_higher_bucket_and_in_inf():
    b = {0.005: 90.0, 0.025: 98.0, 0.1: 98.0, math.inf: 100.0}
    assert histogram.quantile(0.95, b) == pytest.approx(0.005 + 0.02 * 5 / 8)
    assert histogram.quantile(0.99, b) == 0.1  # past the last finite bound
    assert histogram.share_within(0.005, b) == 0.9


def test_nothing_observed():
    empty = {0.005: 0.0, math.inf: 0.0}
    assert histogram.quantile(0.99, empty) is None
    assert histogram.share_within(0.005, empty) is None
    assert histogram.quantile(0.5, {}) is None
