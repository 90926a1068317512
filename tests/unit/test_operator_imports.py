"""The operator's processes (`enclavectl operator run` and its webhook child) run without the
Kubernetes client library, which kopf would otherwise import for nothing (about 20 MiB each);
the rest of enclavectl still has it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# Runs a module as `python -m` does, then says which client-library modules were loaded.
PROBE = """
import atexit, runpy, sys
def loaded():
    names = sorted(m for m, mod in sys.modules.items() if m.startswith("kubernetes") and mod)
    print("LOADED", ",".join(names) or "-", "KOPF" if "kopf" in sys.modules else "", flush=True)
atexit.register(loaded)
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def loaded(module: str, *args: str) -> tuple[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, module, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("LOADED"))
    _, names, *kopf = line.split(" ")
    return names, "".join(kopf)


def test_the_operator_process_loads_kopf_but_not_the_client_library(tmp_path: Path) -> None:
    # no kubeconfig there: the operator imports all it runs with, then fails to log in
    args = ["operator", "run", "--kubeconfig", str(tmp_path / "none"), "--metrics-port", "0"]
    assert loaded("enclave_operator.cli", *args) == ("-", "KOPF")


def test_the_webhook_child_loads_kopf_but_not_the_client_library(tmp_path: Path) -> None:
    args = ["enclave-system", "config", "--kubeconfig", str(tmp_path / "none")]
    assert loaded("enclave_operator.webhook", *args) == ("-", "KOPF")


def test_the_other_commands_still_have_it() -> None:
    names, _ = loaded("enclave_operator.cli", "version")
    assert "kubernetes.client" in names.split(",")
