"""What several actions share: resourceVersion-guarded patches and Helm outcomes."""

from __future__ import annotations

from typing import Any

from enclave_operator.helm.releases import ObjectRef
from enclave_operator.helm.runner import HelmResult
from enclave_operator.reconcile.actions.context import Context, Outcome


async def set_finalizers(ctx: Context, finalizers: list[str], message: str) -> Outcome:
    rv = ctx.cr["metadata"]["resourceVersion"]
    patched = await ctx.kube.merge_patch(
        ctx.cr_path, {"metadata": {"finalizers": finalizers or None, "resourceVersion": rv}}
    )
    return Outcome(True, message, cr=patched)


async def set_owner_references(
    ctx: Context, ref: ObjectRef, owners: list[dict[str, Any]] | None, message: str
) -> Outcome:
    # No resourceVersion precondition here: controllers rewrite these objects' status all the
    # time (a DaemonSet during a rollout), which would make every attempt a 409, while the owner
    # list itself is the operator's to decide (the table's rows 4 and 5).
    path = ctx.kube.object_path(ref)
    patched = await ctx.kube.merge_patch(path, {"metadata": {"ownerReferences": owners}})
    return Outcome(True, message, expect_version=_rv(patched))


def helm_outcome(result: HelmResult, verb: str) -> Outcome:
    if not result.ok:
        return Outcome(False, f"{verb} failed: {result.error}", helm_error=result.error)
    expect = (result.revision, "deployed") if result.revision is not None else None
    return Outcome(True, f"{verb} done: revision {result.revision}", expect_release=expect)


def _rv(patched: dict[str, Any]) -> str:
    return str(patched["metadata"]["resourceVersion"])
