"""The policy controller's side effects, one function per action."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from enclave_operator.api.kinds import SIGNED_POLICY, Kind
from enclave_operator.kube import Kube
from enclave_operator.policies.client import CASClient, Refused, Unreachable
from enclave_operator.policies.controller.model import FINALIZER, Outcome
from enclave_operator.policies.controller.report import registered_message


async def set_finalizer(kube: Kube, path: str, cr: Mapping[str, Any], add: bool) -> None:
    """With the resourceVersion seen, so a stale cache gets a 409 rather than a lost write."""
    meta = cr["metadata"]
    others = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
    finalizers = [*others, FINALIZER] if add else others
    rv = meta["resourceVersion"]
    await kube.merge_patch(
        path, {"metadata": {"finalizers": finalizers or None, "resourceVersion": rv}}
    )


async def register(cas: CASClient, kind: Kind, spec: Mapping[str, Any], url: str) -> Outcome:
    try:
        if kind is SIGNED_POLICY:
            meta = await cas.register_signed(spec["policy"], spec.get("signatures") or [])
        else:
            meta = await cas.register_encrypted(spec["policy"], spec["encryptionKey"])
    except Refused as e:
        return Outcome(False, e.message, refused=True, code=e.code)
    except Unreachable as e:
        return Outcome(False, str(e))
    return Outcome(True, registered_message(meta, url), registered=meta)


async def unregister(cas: CASClient, name: str) -> Outcome:
    """As the operator (its client certificate); a policy already gone counts as done."""
    try:
        await cas.delete(name)
    except Refused as e:
        if e.status == 404:
            return Outcome(True, f"policy {name} was no longer in the CAS")
        return Outcome(False, f"the CAS refused to delete {name}: {e.message}", code=e.code)
    except Unreachable as e:
        return Outcome(False, str(e))
    return Outcome(True, f"policy {name} deleted from the CAS")
