"""What the operator asks of each helm process: install and upgrade skip the OpenAPI
validation (half of a process's CPU), rollback and uninstall are left as they are."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from enclave_operator.helm.runner import HelmRunner


def fake_helm(tmp_path: Path) -> tuple[Path, Path]:
    """A helm that records its argv and answers like `helm install -o json`."""
    log = tmp_path / "argv.jsonl"
    binary = tmp_path / "helm"
    binary.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "sys.stdin.read() if not sys.stdin.isatty() else None\n"
        "print(json.dumps({'version': 1}))\n"
    )
    binary.chmod(0o755)
    return binary, log


def test_install_and_upgrade_skip_openapi_validation(tmp_path):
    binary, log = fake_helm(tmp_path)
    runner = HelmRunner(binary, None)

    async def run() -> None:
        await runner.install("cas-x", "ns", tmp_path, {"a": 1})
        await runner.upgrade("cas-x", "ns", tmp_path, {"a": 1})
        await runner.uninstall("cas-x", "ns")

    asyncio.run(run())
    install, upgrade, uninstall = [json.loads(line) for line in log.read_text().splitlines()]
    assert [install[0], upgrade[0], uninstall[0]] == ["install", "upgrade", "uninstall"]
    assert "--disable-openapi-validation" in install
    assert "--disable-openapi-validation" in upgrade
    assert "--disable-openapi-validation" not in uninstall
