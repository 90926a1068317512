"""A Prometheus server from Debian's package for one test module: loopback only, a temporary
data directory, short scrape and evaluation intervals, killed at the end (and by the kernel if
the test process dies first)."""

from __future__ import annotations

import ctypes
import json
import math
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from enclave_operator.devcluster.processes import free_port
from tests.integration.waiting import wait_for
from tests.prometheus.promtool import binary

JOB = "enclave-operator"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class PrometheusServer:
    def __init__(self, directory: Path, target: str, rule_file: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = directory / "prometheus.log"
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(rule_file)],
            "scrape_configs": [{"job_name": JOB, "static_configs": [{"targets": [target]}]}],
        }
        (directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            binary("prometheus"),
            f"--config.file={self.directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
        ]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent
            )
        wait_for(self._ready, bool, timeout=60, what=f"prometheus ready; log:\n{self.log}")

    def _ready(self) -> bool:
        assert self.proc is not None
        assert self.proc.poll() is None, f"prometheus exited:\n{self.tail()}"
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def get(self, path: str, **params: str) -> Any:
        """The `data` of an HTTP API answer (which must be a success)."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as r:
            body = json.load(r)
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        """Active (pending or firing) alerts of that name whose labels include these."""
        return [
            a
            for a in self.get("/api/v1/alerts")["alerts"]
            if a["labels"].get("alertname") == alertname
            and all(a["labels"].get(k) == v for k, v in labels.items())
        ]

    def own_metric(self, name: str) -> float:
        """A sample of the server's own /metrics (not stored: it does not scrape itself)."""
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(f"{name} ") or line.startswith(f"{name}{{"):
                    return float(line.rsplit(" ", 1)[1])
        return math.nan
