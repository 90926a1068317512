"""What the injection webhook is configured to do, read from the ConfigMap the chart renders.

Pure: the runner hands in the ConfigMap's ``settings.json``; every amount, address and policy
comes from there (with the defaults below), so nothing is hard-coded in the mutation itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from enclave_operator.quantity import quantity

INJECT_LABEL = "enclave.dev/inject"
"""The one opt-in: a pod carrying ``enclave.dev/inject: "true"`` is sent to the webhook."""

SETTINGS_KEY = "settings.json"
DEFAULT_SETTINGS_NAME = "enclave-operator-webhook"
"""ConfigMap (in the operator's namespace) and MutatingWebhookConfiguration name."""


@dataclass(frozen=True)
class Plugin:
    """A device plugin: its name, the resource that carries EPC (and names its taint), the
    unit that resource counts in, and the amounts one enclave takes by default."""

    name: str
    resource: str
    epc_unit: Decimal | None  # bytes per unit of ``resource``; None: a device count
    amounts: Mapping[str, str]


MIB = Decimal(1024 * 1024)

# Detection order as `enclavectl install`'s (install/plugins.py): cloud-specific first.
PLUGINS: tuple[Plugin, ...] = (
    Plugin("alibaba", "alibabacloud.com/sgx_epc_MiB", MIB, {"alibabacloud.com/sgx_epc_MiB": "10"}),
    Plugin(
        "azure",
        "kubernetes.azure.com/sgx_epc_mem_in_MiB",
        MIB,
        {"kubernetes.azure.com/sgx_epc_mem_in_MiB": "10"},
    ),
    Plugin(
        "intel",
        "sgx.intel.com/epc",
        Decimal(1),
        {"sgx.intel.com/epc": "10Mi", "sgx.intel.com/enclave": "1", "sgx.intel.com/provision": "1"},
    ),
    Plugin("enclave", "sgx.k8s.io/sgx", None, {"sgx.k8s.io/sgx": "1"}),
)
BY_NAME = {p.name: p for p in PLUGINS}
SGX_RESOURCES = frozenset(r for p in PLUGINS for r in p.amounts)


class SettingsError(ValueError):
    """The ConfigMap holds something the webhook cannot act on; the message names the field."""


@dataclass(frozen=True)
class Settings:
    simulation: bool = False
    plugin: str = "intel"  # a name in BY_NAME, or "auto": detected from node capacity
    amounts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # per plugin
    init_containers: bool = False
    aesm: bool = False  # out-of-process attestation: mount the AESM socket directory
    aesm_dir: str = "/var/run/aesmd"
    las_port: int = 18766
    cas_address: str = "cas-enclave.enclave-system.svc:18765"
    cas_ca_secret: str = "cas-enclave-tls"  # in cas_ca_namespace, key ca.crt
    cas_ca_namespace: str = "enclave-system"
    cas_ca_configmap: str = "enclave-cas-ca"  # the copy in each workload namespace
    configuration: str = DEFAULT_SETTINGS_NAME
    service: str | None = None  # in-cluster: the Service in front of the operator
    port: int = 9443
    failure_policy: str = "Fail"
    timeout_seconds: int = 5
    excluded_namespaces: tuple[str, ...] = ("kube-system",)
    cert_validity: float = 30 * 86400.0  # serving certificate, seconds
    ca_validity: float = 365 * 86400.0
    propagation: float = 10.0  # seconds a new CA is trusted before it signs the serving cert

    def amounts_of(self, plugin: Plugin) -> dict[str, str]:
        """The plugin's default amounts, each replaced by the configured one."""
        return {**plugin.amounts, **self.amounts.get(plugin.name, {})}


def _check(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise SettingsError(f"{SETTINGS_KEY}: {where}: {what}")


def _amounts(raw: Any) -> dict[str, dict[str, str]]:
    _check(isinstance(raw, dict), "amounts", "must be an object of plugin → resource → amount")
    result: dict[str, dict[str, str]] = {}
    for name, table in raw.items():
        _check(name in BY_NAME, f"amounts.{name}", f"unknown plugin (known: {', '.join(BY_NAME)})")
        _check(isinstance(table, dict), f"amounts.{name}", "must be an object")
        known = BY_NAME[name].amounts
        for resource, amount in table.items():
            where = f"amounts.{name}.{resource}"
            _check(resource in known, where, f"not a resource of {name}: {', '.join(known)}")
            value = quantity(str(amount))
            _check(value is not None and value > 0, where, f"{amount!r} is not a positive amount")
        result[name] = {str(r): str(a) for r, a in table.items()}
    return result


_FIELDS: dict[str, tuple[str, type | tuple[type, ...]]] = {
    "simulation": ("simulation", bool),
    "plugin": ("plugin", str),
    "initContainers": ("init_containers", bool),
    "aesm": ("aesm", bool),
    "aesmDir": ("aesm_dir", str),
    "lasPort": ("las_port", int),
    "casAddress": ("cas_address", str),
    "casCASecret": ("cas_ca_secret", str),
    "casCANamespace": ("cas_ca_namespace", str),
    "casCAConfigMap": ("cas_ca_configmap", str),
    "configuration": ("configuration", str),
    "service": ("service", (str, type(None))),
    "port": ("port", int),
    "failurePolicy": ("failure_policy", str),
    "timeoutSeconds": ("timeout_seconds", int),
    "certValiditySeconds": ("cert_validity", (int, float)),
    "caValiditySeconds": ("ca_validity", (int, float)),
    "propagationSeconds": ("propagation", (int, float)),
}


def parse(text: str) -> Settings:
    """Settings from the ConfigMap's JSON; unknown keys are errors, so a typo is not ignored."""
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as e:
        raise SettingsError(f"{SETTINGS_KEY}: not JSON: {e}") from e
    _check(isinstance(raw, dict), "(top)", "must be an object")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "amounts":
            values["amounts"] = _amounts(value)
            continue
        if key == "excludedNamespaces":
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            _check(ok, key, "must be a list of namespace names")
            values["excluded_namespaces"] = tuple(value)
            continue
        _check(key in _FIELDS, key, "unknown setting")
        attr, kind = _FIELDS[key]
        ok = isinstance(value, kind) and not (
            isinstance(value, bool) and kind in (int, (int, float))
        )
        _check(ok, key, f"wrong type {type(value).__name__}")
        values[attr] = value
    settings = Settings(**values)
    _check(settings.plugin in (*BY_NAME, "auto"), "plugin", f"unknown plugin {settings.plugin!r}")
    _check(settings.failure_policy in ("Fail", "Ignore"), "failurePolicy", "Fail or Ignore")
    _check(1 <= settings.timeout_seconds <= 30, "timeoutSeconds", "between 1 and 30")
    _check(0 < settings.las_port < 65536, "lasPort", "a port number")
    _check(0 < settings.port < 65536, "port", "a port number")
    _check(settings.cert_validity > 3 * settings.propagation, "certValiditySeconds", "too short")
    _check(settings.ca_validity >= 2 * settings.cert_validity, "caValiditySeconds", "too short")
    return settings


def detect(capacities: list[Mapping[str, str]]) -> Plugin | None:
    """The first plugin, in PLUGINS order, whose resource some node advertises (> 0)."""
    for plugin in PLUGINS:
        for capacity in capacities:
            amount = quantity(capacity.get(plugin.resource))
            if amount is not None and amount > 0:
                return plugin
    return None
