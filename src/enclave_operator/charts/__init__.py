"""The Helm charts of the three services, shipped as package data, and where to find them."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind

_DIRECTORIES = {CAS: "cas", LAS: "las", SGXPLUGIN: "sgxplugin"}


def chart_path(kind: Kind) -> Path:
    """The chart directory of ``kind``, a real path because the ``helm`` binary reads it.

    The package is installed unzipped (a wheel or an editable install), so the resource is a
    plain directory; anything else is a packaging error worth failing loudly on.
    """
    try:
        directory = _DIRECTORIES[kind]
    except KeyError:
        raise ValueError(f"{kind.kind} is not deployed by a Helm chart") from None
    path = resources.files(__name__) / directory
    if not isinstance(path, Path) or not (path / "Chart.yaml").is_file():
        raise FileNotFoundError(f"chart {directory!r} is not installed with {__name__}: {path}")
    return path
