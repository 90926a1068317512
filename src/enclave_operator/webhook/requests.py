"""What one pod asks for through its annotations, checked before anything is injected.

Pure. Every refusal names the annotation, so `kubectl apply` shows the user what to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from enclave_operator.quantity import quantity
from enclave_operator.webhook.settings import BY_NAME, Plugin, Settings

EPC = "enclave.dev/epc"
PLUGIN = "enclave.dev/plugin"
CONFIG_ID = "enclave.dev/config-id"
CONTAINERS = "enclave.dev/containers"
INIT_CONTAINERS = "enclave.dev/init-containers"
INJECTED = "enclave.dev/injected"

_CONFIG_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}/[A-Za-z0-9._-]{1,128}$")


class Refusal(Exception):
    """The pod asks for something invalid or contradictory: it is denied with this message."""


@dataclass(frozen=True)
class Ask:
    """The pod's request, resolved against the settings."""

    plugin: Plugin | None  # None in simulation
    amounts: Mapping[str, str]  # SGX limits per container (empty in simulation)
    config_id: str | None
    containers: frozenset[str] | None  # None: every container
    init_containers: bool
    epc: str | None = None  # the EPC amount annotation enclave.dev/epc asked for, in plugin units


def _epc_amount(raw: str, plugin: Plugin) -> str | None:
    """The annotation in the unit of ``plugin``'s EPC resource; None when it counts devices."""
    value = quantity(raw)
    if value is None or value <= 0:
        raise Refusal(f"annotation {EPC}={raw!r}: not a positive memory quantity such as 64Mi")
    if plugin.epc_unit is None:
        return None
    if plugin.epc_unit == Decimal(1):
        if value != value.to_integral_value():
            raise Refusal(f"annotation {EPC}={raw!r}: not a whole number of bytes")
        return raw
    units = value / plugin.epc_unit
    if units != units.to_integral_value():
        raise Refusal(
            f"annotation {EPC}={raw!r}: {plugin.resource} counts whole MiB; use e.g. 64Mi"
        )
    return str(int(units))


def _names(raw: str) -> frozenset[str]:
    names = frozenset(n.strip() for n in raw.split(",") if n.strip())
    if not names:
        raise Refusal(f"annotation {CONTAINERS}={raw!r}: names no container")
    return names


def _flag(raw: str, name: str) -> bool:
    if raw not in ("true", "false"):
        raise Refusal(f'annotation {name}={raw!r}: must be "true" or "false"')
    return raw == "true"


def read(pod: Mapping[str, Any], settings: Settings, detected: Plugin | None) -> Ask:
    """The pod's annotations checked and resolved; raises Refusal."""
    notes: Mapping[str, str] = (pod.get("metadata") or {}).get("annotations") or {}
    plugin = detected
    if (name := notes.get(PLUGIN)) is not None:
        if name not in BY_NAME:
            raise Refusal(
                f"annotation {PLUGIN}={name!r}: unknown SGX device plugin"
                f" (known: {', '.join(BY_NAME)})"
            )
        plugin = BY_NAME[name]
    config_id = notes.get(CONFIG_ID)
    if config_id is not None and not _CONFIG_ID.match(config_id):
        raise Refusal(f"annotation {CONFIG_ID}={config_id!r}: must be <policy>/<service>")
    containers = _names(notes[CONTAINERS]) if CONTAINERS in notes else None
    init = (
        _flag(notes[INIT_CONTAINERS], INIT_CONTAINERS)
        if INIT_CONTAINERS in notes
        else settings.init_containers
    )
    if settings.simulation:
        if EPC in notes:
            quantity_ok = quantity(notes[EPC])
            if quantity_ok is None or quantity_ok <= 0:
                raise Refusal(f"annotation {EPC}={notes[EPC]!r}: not a positive memory quantity")
        return Ask(None, {}, config_id, containers, init)
    if plugin is None:
        raise Refusal(
            "no node advertises an SGX device plugin's resource, and the installation is not"
            f" in simulation: set annotation {PLUGIN} or install a device plugin"
        )
    amounts = settings.amounts_of(plugin)
    epc = _epc_amount(notes[EPC], plugin) if EPC in notes else None
    if epc is not None:
        amounts = {**amounts, plugin.resource: epc}
    return Ask(plugin, amounts, config_id, containers, init, epc)
