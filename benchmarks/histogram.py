"""kube-apiserver's own histograms, from its /metrics text: one scrape before a phase and one
after, differenced, give that phase's distribution without any clock of ours in the path."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Buckets = dict[float, float]
"""Upper bound (le) → cumulative count, summed over every series that matched."""


def buckets(text: str, metric: str, match: Mapping[str, str]) -> Buckets:
    """The ``<metric>_bucket`` series whose labels have ``match``'s values ("" also matches a
    label that is absent), summed per le."""
    prefix = f"{metric}_bucket{{"
    out: Buckets = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        labels_text, _, value = line[len(prefix) :].rpartition("} ")
        labels = dict(_LABEL.findall(labels_text))
        if all(labels.get(k, "") == v for k, v in match.items()):
            le = float(labels["le"])
            out[le] = out.get(le, 0.0) + float(value.split()[0])
    return out


def minus(after: Buckets, before: Buckets) -> Buckets:
    return {le: count - before.get(le, 0.0) for le, count in after.items()}


def count(b: Buckets) -> float:
    return b.get(math.inf, 0.0)


def quantile(q: float, b: Buckets) -> float | None:
    """As PromQL's histogram_quantile: linear within the bucket the rank falls in; the
    highest finite bound when it falls in +Inf; None without observations."""
    total = count(b)
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le in sorted(b):
        if b[le] >= rank:
            if math.isinf(le):
                return lower
            inside = b[le] - below
            return lower + (le - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = le, b[le]
    return lower


def share_within(bound: float, b: Buckets) -> float | None:
    """The fraction of observations at most ``bound`` (which must be a bucket bound): the one
    figure the histogram states exactly."""
    total = count(b)
    if total <= 0 or bound not in b:
        return None
    return b[bound] / total
