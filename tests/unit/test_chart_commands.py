"""No chart may start a command that does not exist: every container command of every chart
the project ships, rendered by the real helm, runs with --help and exits 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from enclave_operator.api.kinds import CAS, LAS, SGXPLUGIN, Kind
from tests.unit.test_chart_render import HELM, render, sample

ROOT = Path(__file__).resolve().parents[2]
ENCLAVECTL = [sys.executable, "-m", "enclave_operator.cli"]

pytestmark = pytest.mark.skipif(not HELM.exists(), reason=f"helm binary not built at {HELM}")


def commands(docs) -> list[list[str]]:
    found = []
    for doc in docs:
        template = (doc.get("spec") or {}).get("template") or {}
        pod = template.get("spec") or {}
        for c in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            found.append([*c.get("command", []), *c.get("args", [])])
    return found


def run_help(argv: list[str]) -> subprocess.CompletedProcess[str]:
    assert argv, "a container without a command relies on the image's entry point"
    assert argv[0] == "enclavectl", f"the image runs enclavectl, not {argv[0]}"
    # flags with values stay, so an unknown flag still fails before --help is read
    return subprocess.run(
        [*ENCLAVECTL, *argv[1:], "--help"], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("kind", [CAS, LAS, SGXPLUGIN], ids=lambda k: k.kind)
def test_service_chart_commands_exist(kind: Kind):
    _, docs = render(kind, sample(kind)["spec"])
    found = commands(docs)
    assert found
    for argv in found:
        proc = run_help(argv)
        assert proc.returncode == 0, f"{argv}: {proc.stdout}{proc.stderr}"


def test_operator_chart_commands_exist():
    proc = subprocess.run(
        [str(HELM), "template", "enclave", str(ROOT / "charts" / "enclave-operator"), "-n", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    found = commands([d for d in yaml.safe_load_all(proc.stdout) if d])
    assert found
    for argv in found:
        result = run_help(argv)
        assert result.returncode == 0, f"{argv}: {result.stdout}{result.stderr}"
