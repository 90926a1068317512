"""The operator chart passes autoUpdate's check interval to the operator."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from enclave_operator.devcluster.binaries import toolset

ROOT = Path(__file__).resolve().parents[2]
HELM = toolset().path("helm")

pytestmark = pytest.mark.skipif(not HELM.exists(), reason=f"helm binary not built at {HELM}")


def operator_env(*sets: str) -> dict[str, str]:
    args = [a for s in sets for a in ("--set", s)]
    proc = subprocess.run(
        [str(HELM), "template", "e", str(ROOT / "charts" / "enclave-operator"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    (deploy,) = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "Deployment"]
    env = deploy["spec"]["template"]["spec"]["containers"][0]["env"]
    return {e["name"]: e.get("value") for e in env}


def test_auto_update_interval_reaches_the_operator():
    assert operator_env()["AUTO_UPDATE_INTERVAL"] == "300"
    assert operator_env("operator.autoUpdateInterval=45")["AUTO_UPDATE_INTERVAL"] == "45"


def test_auto_update_interval_below_one_second_is_refused():
    proc = subprocess.run(
        [str(HELM), "template", "e", str(ROOT / "charts" / "enclave-operator"),
         "--set", "operator.autoUpdateInterval=0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "autoUpdateInterval" in proc.stderr
