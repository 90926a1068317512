"""One module per action of the condition table; `run` dispatches by kind."""

from __future__ import annotations

from enclave_operator.helm.releases import ObjectRef
from enclave_operator.reconcile.actions.add_finalizer import add_finalizer
from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.install import install
from enclave_operator.reconcile.actions.kept import delete_kept, disown_kept
from enclave_operator.reconcile.actions.remove_finalizer import remove_finalizer
from enclave_operator.reconcile.actions.remove_owners import remove_owners
from enclave_operator.reconcile.actions.renew_certificate import renew_certificate
from enclave_operator.reconcile.actions.rollback import rollback
from enclave_operator.reconcile.actions.set_owner import set_owner
from enclave_operator.reconcile.actions.uninstall import uninstall
from enclave_operator.reconcile.actions.upgrade import upgrade
from enclave_operator.reconcile.model import ActionKind


async def run(
    kind: ActionKind,
    ctx: Context,
    target: ObjectRef | None,
    revisions: tuple[int, int] | None = None,
) -> Outcome:
    """``revisions``: for a rollback, (the latest revision, the one to go back to)."""
    match kind:
        case ActionKind.UNINSTALL_DELETED | ActionKind.UNINSTALL_FAILED:
            return await uninstall(ctx)
        case ActionKind.REMOVE_FINALIZER:
            return await remove_finalizer(ctx)
        case ActionKind.ADD_FINALIZER:
            return await add_finalizer(ctx)
        case ActionKind.REMOVE_OWNERS if target is not None:
            return await remove_owners(ctx, target)
        case ActionKind.SET_OWNER if target is not None:
            return await set_owner(ctx, target)
        case ActionKind.INSTALL:
            return await install(ctx)
        case ActionKind.UPGRADE:
            return await upgrade(ctx)
        case ActionKind.ROLLBACK if revisions is not None:
            return await rollback(ctx, *revisions)
        case ActionKind.DISOWN_KEPT if target is not None:
            return await disown_kept(ctx, target)
        case ActionKind.DELETE_KEPT if target is not None:
            return await delete_kept(ctx, target)
        case ActionKind.RENEW_CERTIFICATE:
            return await renew_certificate(ctx)
    raise ValueError(f"no action for {kind} (target {target})")
