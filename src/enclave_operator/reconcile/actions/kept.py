"""What Helm keeps after an uninstall (``helm.sh/resource-policy: keep``: the CAS database
claim), once the release of a deleted CR is gone: deleted when the spec asks for it, else no
longer owned by the CR, so the garbage collector leaves it when the CR goes."""

from __future__ import annotations

from enclave_operator.helm.releases import ObjectRef
from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import set_owner_references


async def disown_kept(ctx: Context, ref: ObjectRef) -> Outcome:
    """Row 4 already left the CR as the only owner of its objects while it lived."""
    message = f"kept {ref.description}; {ctx.kind.kind} no longer owns it"
    return await set_owner_references(ctx, ref, None, message)


async def delete_kept(ctx: Context, ref: ObjectRef) -> Outcome:
    await ctx.kube.request("DELETE", ctx.kube.object_path(ref))
    return Outcome(True, f"deleted {ref.description}, as the spec asks")
