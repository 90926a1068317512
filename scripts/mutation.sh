#!/usr/bin/env bash
# Mutation testing of the pure core (`make mutation`; not in CI, it takes minutes).
#
# mutmut runs in a scratch copy, so the working tree never holds a mutant and a run cannot
# collide with edits made meanwhile. Only the fast unit tests of the mutated modules run.
# mutmut 3 mutates function bodies only; the module-level tables (PENDING_WHEN, _RULES, ...)
# get their own mutants from scripts/table_mutants.py: each entry deleted in turn.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=$(cd "${VENV:-$root/.venv}" && pwd)  # absolute: the run happens elsewhere
work=${MUTATION_DIR:-${TMPDIR:-/tmp}/enclave-mutation-$UID}
jobs=${MUTATION_JOBS:-$(nproc)}

modules=(
    src/enclave_operator/reconcile/decide.py
    src/enclave_operator/reconcile/conditions.py
    src/enclave_operator/reconcile/health.py
    src/enclave_operator/figures/compute.py
)
tests=(
    tests/unit/test_decide.py
    tests/unit/test_state_table.py
    tests/unit/test_state_table_conditions.py
    tests/unit/test_state_table_actions.py
    tests/unit/test_health.py
    tests/unit/test_health_messages.py
    tests/unit/test_figures.py
    tests/unit/test_figures_edges.py
    tests/unit/test_install_summary.py  # reads PENDING_WHEN for each condition's healthy value
)

rm -rf "$work"
mkdir -p "$work/tests/unit"
cp -r "$root/src" "$root/pyproject.toml" "$work/"
find "$work/src" -name __pycache__ -prune -exec rm -rf {} +
cp "$root/tests/__init__.py" "$work/tests/"
cp "$root/tests/unit/__init__.py" "$root/tests/unit/observations.py" "${tests[@]/#/$root/}" \
    "$work/tests/unit/"
{
    echo "[mutmut]"
    echo "source_paths = src/"
    echo "only_mutate ="
    printf '    %s\n' "${modules[@]}"
    echo "pytest_add_cli_args_test_selection ="
    printf '    %s\n' "${tests[@]}"
    echo "pytest_add_cli_args = -p no:cacheprovider"
} >"$work/setup.cfg"

cd "$work"
start=$SECONDS
# mutmut's progress line is redrawn in place; keep only its final state.
"$venv/bin/mutmut" run --max-children "$jobs" | tr '\r' '\n' | tail -n 3
echo "mutmut: $((SECONDS - start)) s with $jobs workers"
echo "--- surviving mutants (mutmut show <name> for the diff)"
"$venv/bin/mutmut" results | sed 's/^ *//' | grep -v ': killed$' || echo "none"

echo "--- module-level tables"
"$venv/bin/python" "$root/scripts/table_mutants.py" --root "$work" "${modules[@]}" -- "${tests[@]}"
echo "mutation testing: $((SECONDS - start)) s"
