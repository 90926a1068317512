"""Kubernetes quantities ("128Mi", "500m", 20) as exact decimals.

The grammar is apimachinery's (resource.Quantity): a signed decimal number, then a binary
suffix (Ki … Ei), a decimal one (n u m k M G T P E) or an exponent (e3, E-2). It is parsed
here rather than with the client library's helper, which would load that whole library
(every model class) into the operator for twenty lines.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)"
_QUANTITY = re.compile(rf"({_NUMBER})(?:([KMGTPE]i|[numkMGTPE])|[eE]([+-]?\d+))?")
_POWERS = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}


def quantity(value: Any) -> Decimal | None:
    """None for what is not a quantity, so callers can tell "unreadable" from zero."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if value == value and abs(value) != float("inf") else None
    match = _QUANTITY.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return None
    number, suffix, exponent = match.groups()
    try:
        base = Decimal(number)
        if exponent is not None:
            return base.scaleb(int(exponent))
        if suffix is None:
            return base
        if suffix.endswith("i"):
            return base * Decimal(1024) ** ("KMGTPE".index(suffix[0]) + 1)
        return base.scaleb(_POWERS[suffix])
    except InvalidOperation:
        return None
