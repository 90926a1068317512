"""Quantities parse as the API server's grammar says, and agree with the client library's
helper on every quantity that grammar allows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from kubernetes.utils import parse_quantity

from enclave_operator.quantity import quantity

VALID = [
    "0",
    "1",
    "20",
    "+5",
    "-3",
    "1.5",
    "1.",
    ".5",
    "-.5",
    "500m",
    "1n",
    "3u",
    "2k",
    "4M",
    "5G",
    "6T",
    "7P",
    "8E",
    "1Ki",
    "128Mi",
    "1.5Gi",
    "2Ti",
    "3Pi",
    "1Ei",
    "1e3",
    "1E3",
    "2e-2",
    "1.5e+1",
]


@pytest.mark.parametrize("text", VALID)
def test_agrees_with_the_client_library(text: str) -> None:
    assert quantity(text) == Decimal(parse_quantity(text))  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("128Mi", Decimal(128 * 2**20)),
        ("500m", Decimal("0.5")),
        ("1e3", Decimal(1000)),
        (20, Decimal(20)),
        (0.25, Decimal("0.25")),
        (Decimal("1.5"), Decimal("1.5")),
    ],
)
def test_values(value: object, expected: Decimal) -> None:
    assert quantity(value) == expected


# not quantities for the API server; the library's helper takes several of them ("1K", "NaN")
@pytest.mark.parametrize(
    "value",
    [
        "",
        "Mi",
        "1K",
        "1ki",
        "1mi",
        "1 Mi",
        " 1",
        "1.2.3",
        "NaN",
        "Infinity",
        "1e",
        "e3",
        "0x10",
        None,
        True,
        [],
        float("nan"),
        float("inf"),
    ],
)
def test_not_quantities(value: object) -> None:
    assert quantity(value) is None
