"""Action 2: let the API server finish deleting the CR once its release is gone."""

from __future__ import annotations

from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import set_finalizers
from enclave_operator.reconcile.observe import FINALIZER


async def remove_finalizer(ctx: Context) -> Outcome:
    finalizers = [f for f in ctx.cr["metadata"].get("finalizers") or [] if f != FINALIZER]
    return await set_finalizers(ctx, finalizers, "removed finalizer")
