"""The enclave-operator chart and the ``helm`` commands enclavectl runs on it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from enclave_operator.install.cluster import CLIError

RELEASE = "enclave"
CHART = "enclave-operator"


def chart_dir(explicit: Path | None = None) -> Path:
    """--chart, else $ENCLAVE_CHART, else charts/enclave-operator of this source checkout."""
    candidates = [explicit] if explicit else []
    if env := os.environ.get("ENCLAVE_CHART"):
        candidates.append(Path(env))
    candidates += [p / "charts" / CHART for p in Path(__file__).resolve().parents]
    for path in candidates:
        if path is not None and (path / "Chart.yaml").is_file():
            return path
    raise CLIError(
        f"chart {CHART} not found: pass --chart or set ENCLAVE_CHART to its directory"
        if explicit is None
        else f"no chart at {explicit} (no Chart.yaml)"
    )


def helm_path() -> Path:
    """The operator's choice: helm on PATH (the image), else the dev tooling's build."""
    from enclave_operator.controller.run import helm_binary

    path = helm_binary()
    if not path.exists():
        raise CLIError(f"helm not found on PATH nor at {path} (make tools builds it)")
    return path


def _one_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    return (errors[-1] if errors else lines[-1] if lines else "no output").removeprefix("Error: ")


class Helm:
    def __init__(self, kubeconfig: Path) -> None:
        self.binary = helm_path()
        self.kubeconfig = kubeconfig

    def run(self, *args: str, values: dict[str, Any] | None = None) -> str:
        """helm's stdout; a CLIError with helm's own error line when it fails."""
        argv = [str(self.binary), *args, *(["--values", "-"] if values is not None else [])]
        proc = subprocess.run(
            argv,
            input=json.dumps(values) if values is not None else None,
            capture_output=True,
            text=True,
            timeout=600,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )
        if proc.returncode != 0:
            raise CLIError(f"helm {args[0]} failed: {_one_line(proc.stderr)}")
        return proc.stdout

    def releases(self) -> list[dict[str, Any]]:
        """Releases of the enclave-operator chart in any namespace and any state."""
        states = ("--deployed", "--failed", "--pending", "--uninstalling")
        out = self.run("list", "--all-namespaces", *states, "--output", "json")
        listed: list[dict[str, Any]] = json.loads(out or "[]")
        return [r for r in listed if str(r.get("chart", "")).startswith(f"{CHART}-")]

    def install(self, namespace: str, chart: Path, values: dict[str, Any]) -> None:
        """CRDs are applied beforehand (kept current, unlike helm's crds/ handling)."""
        self.run(
            "install",
            RELEASE,
            str(chart),
            "--namespace",
            namespace,
            "--skip-crds",
            "--output",
            "json",
            values=values,
        )

    def uninstall(self, release: str, namespace: str) -> None:
        self.run("uninstall", release, "--namespace", namespace, "--ignore-not-found")
