"""The shipped alert rules as Prometheus and promtool read them, and the package's binaries.

`config/prometheus/alerts.yaml` is a PrometheusRule; its `spec` is a plain rule file, which is
what promtool and a bare Prometheus server take.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "config" / "prometheus" / "alerts.yaml"
RULE_TESTS = Path(__file__).with_name("alerts_test.yaml")
PLAIN = "alerts.rules.yaml"  # the name alerts_test.yaml's rule_files gives


def binary(name: str) -> str:
    """Debian's prometheus package's binary; missing means the setup was skipped."""
    found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else "")
    assert found, f"{name} not found: run scripts/setup-prometheus.sh (make test does)"
    return found


def rules(source: Path = RULES) -> list[dict[str, Any]]:
    doc = yaml.safe_load(source.read_text())
    return [rule for group in doc["spec"]["groups"] for rule in group["rules"]]


def write_plain(directory: Path, source: Path = RULES, for_: str | None = None) -> Path:
    """The PrometheusRule's spec as a rule file in `directory`; `for_` replaces every rule's
    `for` (the integration test cannot wait the shipped minutes)."""
    spec = yaml.safe_load(source.read_text())["spec"]
    if for_ is not None:
        for group in spec["groups"]:
            for rule in group["rules"]:
                rule["for"] = for_
    path = directory / PLAIN
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )
