"""Row 8, first choice: a failed or abandoned upgrade goes back to the revision that worked.

Unlike row 8's uninstall it deletes nothing: the objects, and the CAS database on its claim,
stay as that revision left them. The CR's spec is upgraded again afterwards (row 9, with the
backoff of a failed Helm run).
"""

from __future__ import annotations

from enclave_operator.reconcile.actions.context import Context, Outcome


async def rollback(ctx: Context, latest: int, to: int) -> Outcome:
    result = await ctx.helm.rollback(ctx.release_name, ctx.release_namespace, to)
    if not result.ok:
        return Outcome(False, f"rollback failed: {result.error}", helm_error=result.error)
    # helm rollback prints no revision: Helm writes the rollback as the next one
    return Outcome(
        True,
        f"rolled back to revision {to} as {latest + 1}",
        expect_release=(latest + 1, "deployed"),
    )
