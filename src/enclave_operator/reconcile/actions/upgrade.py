"""Action 9: upgrade the release to the CR's spec, putting drifted objects back."""

from __future__ import annotations

from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import helm_outcome


async def upgrade(ctx: Context) -> Outcome:
    result = await ctx.helm.upgrade(
        ctx.release_name, ctx.release_namespace, ctx.chart, dict(ctx.values)
    )
    return helm_outcome(result, "upgrade")
