"""Action 3: put the operator's finalizer on the CR, so deletion waits for the uninstall."""

from __future__ import annotations

from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import set_finalizers
from enclave_operator.reconcile.observe import FINALIZER


async def add_finalizer(ctx: Context) -> Outcome:
    finalizers = [*(ctx.cr["metadata"].get("finalizers") or []), FINALIZER]
    return await set_finalizers(ctx, finalizers, "added finalizer")
