"""Action 4: an owned object with several owners loses them all (action 5 then adds the CR)."""

from __future__ import annotations

from enclave_operator.helm.releases import ObjectRef
from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import set_owner_references


async def remove_owners(ctx: Context, ref: ObjectRef) -> Outcome:
    return await set_owner_references(ctx, ref, None, f"removed all owners of {ref.description}")
