"""Actions 1 and 8: uninstall the release, for a deleted CR or a failed release."""

from __future__ import annotations

from enclave_operator.reconcile.actions.context import Context, Outcome


async def uninstall(ctx: Context) -> Outcome:
    result = await ctx.helm.uninstall(ctx.release_name, ctx.release_namespace)
    if not result.ok:
        return Outcome(False, f"uninstall failed: {result.error}", helm_error=result.error)
    return Outcome(True, "uninstalled", expect_release_gone=True)
