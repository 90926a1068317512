"""What an install is asked for, and what that means for the chart's values. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from enclave_operator.install.plugins import Plugin

CR_NAME = "enclave"
"""Name of the CAS, LAS and SGXPlugin the chart creates (services.*.name)."""


@dataclass(frozen=True)
class Options:
    namespace: str
    domains: tuple[str, ...] = ()
    simulation: bool = False
    resource_key: str | None = None
    timeout: float = 300
    local_operator: bool = False
    image: str | None = None
    chart: Path | None = None
    webhook: bool = True
    ingress: bool = False


def chart_values(opts: Options, plugin: Plugin | None, selector: dict[str, str]) -> Any:
    """The chart's values for this install; enclavectl makes the TLS Secret itself."""
    values: dict[str, Any] = {
        "simulation": opts.simulation,
        "hostname": opts.domains[0] if opts.domains else "localhost",
        "operator": {"enabled": not opts.local_operator},
        "tls": {"create": False},
        # explicit, though the chart's default: --no-webhook must win over any chart
        "webhook": {"enabled": opts.webhook},
    }
    # enclavectl issues the LAS's client certificate (tls.py), so its CAS may require it
    cas_spec: dict[str, Any] = {"lasEnrolment": "Certificate"}
    if opts.ingress and opts.domains:  # the CAS client API at the first --domain, by SNI
        cas_spec["ingress"] = {"enabled": True, "host": opts.domains[0]}
    values["services"] = {"cas": {"spec": cas_spec}}
    if plugin is not None:
        values["sgx"] = {"resourceKey": plugin.resource, "nodeSelector": selector}
    if opts.image:
        repository, _, tag = opts.image.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = opts.image, ""
        values["image"] = {"repository": repository, "tag": tag}
    return values


def our_crs(namespace: str) -> list[tuple[Kind, dict[str, Any]]]:
    meta = {"name": CR_NAME}
    return [
        (SGXPLUGIN, {"metadata": meta}),
        (LAS, {"metadata": meta}),
        (CAS, {"metadata": {**meta, "namespace": namespace}}),
    ]
