"""SignedPolicy and EncryptedPolicy manifests, as `enclavectl policy sign|encrypt` print them,
and reading them back for `verify`."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml

from enclave_operator.api.kinds import ENCRYPTED_POLICY, SIGNED_POLICY
from enclave_operator.policies.signing import Signature

DEFAULT_CAS_ADDRESS = "cas-enclave.enclave-system.svc:8081"
"""The CAS that `enclavectl install` creates, by its in-cluster Service name."""


def resource_name(policy_name: str) -> str:
    """A Kubernetes name for a policy name ('_' is not allowed in resource names)."""
    return re.sub(r"[^a-z0-9.-]", "-", policy_name)[:253].strip("-.") or "policy"


def _metadata(name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return meta


def signed(
    name: str, namespace: str | None, cas_address: str, policy: str, sigs: Sequence[Signature]
) -> dict[str, Any]:
    return {
        "apiVersion": SIGNED_POLICY.api_version,
        "kind": SIGNED_POLICY.kind,
        "metadata": _metadata(name, namespace),
        "spec": {
            "casAddress": cas_address,
            "policy": policy,
            "signatures": [s.as_dict() for s in sigs],
        },
    }


def encrypted(
    name: str, namespace: str | None, cas_address: str, sealed: str, key: str
) -> dict[str, Any]:
    return {
        "apiVersion": ENCRYPTED_POLICY.api_version,
        "kind": ENCRYPTED_POLICY.kind,
        "metadata": _metadata(name, namespace),
        "spec": {"casAddress": cas_address, "policy": sealed, "encryptionKey": key},
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    """Multi-line text as a literal block, so the policy reads as it was written; only where
    YAML gives back the exact same bytes (no trailing spaces, no tabs, one final newline)."""
    literal = (
        "\n" in value
        and value.endswith("\n")
        and not value.endswith("\n\n")
        and not any(line != line.rstrip() for line in value.split("\n"))
        and "\t" not in value
    )
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if literal else None)


_Dumper.add_representer(str, _str)


def dump(manifest: dict[str, Any]) -> str:
    text = yaml.dump(manifest, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    if yaml.safe_load(text) != manifest:  # never print a manifest that reads back differently
        text = yaml.safe_dump(manifest, sort_keys=False, width=100)
    return text
