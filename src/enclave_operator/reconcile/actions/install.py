"""Action 6: install the release (helm install; a failure is Helm's text in the outcome)."""

from __future__ import annotations

from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import helm_outcome


async def install(ctx: Context) -> Outcome:
    result = await ctx.helm.install(
        ctx.release_name, ctx.release_namespace, ctx.chart, dict(ctx.values)
    )
    return helm_outcome(result, "install")
