"""Action 5: the CR becomes the controller owner, so the garbage collector follows it."""

from __future__ import annotations

from enclave_operator.helm.releases import ObjectRef
from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import set_owner_references


async def set_owner(ctx: Context, ref: ObjectRef) -> Outcome:
    meta = ctx.cr["metadata"]
    owner = {
        "apiVersion": ctx.kind.api_version,
        "kind": ctx.kind.kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    message = f"set {ctx.kind.kind} as owner of {ref.description}"
    return await set_owner_references(ctx, ref, [owner], message)
