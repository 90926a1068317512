"""Kubernetes quantities ("128Mi", "500m", 20) as exact decimals."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from kubernetes.utils import parse_quantity


def quantity(value: Any) -> Decimal | None:
    """None for what is not a quantity, so callers can tell "unreadable" from zero."""
    try:
        return Decimal(parse_quantity(value))  # type: ignore[no-untyped-call]
    except (ValueError, TypeError, ArithmeticError):
        return None
