"""Action 6: install the release (helm install; a failure is Helm's text in the outcome)."""

from __future__ import annotations

from dataclasses import replace

from enclave_operator.helm.releases import OPERATOR_LABEL
from enclave_operator.reconcile.actions.context import Context, Outcome
from enclave_operator.reconcile.actions.patching import helm_outcome

NAME_IN_USE = "a name that is still in use"  # helm 3: "cannot re-use …", helm 4: "cannot reuse …"


async def install(ctx: Context) -> Outcome:
    result = await ctx.helm.install(
        ctx.release_name, ctx.release_namespace, ctx.chart, dict(ctx.values)
    )
    if not result.ok and NAME_IN_USE in result.error:
        # the watch shows only releases with our label: this one was made by someone else
        error = (
            f"a release {ctx.release_namespace}/{ctx.release_name} that this operator did not"
            f" make exists (its records lack the label {OPERATOR_LABEL[0]}={OPERATOR_LABEL[1]});"
            f" it is left alone, never upgraded or uninstalled: remove it or rename this"
            f" {ctx.kind.kind} ({result.error})"
        )
        result = replace(result, error=error)
    return helm_outcome(result, "install")
