"""LAS as a local process on loopback (`enclavectl service las`), and the helpers the
attestation tests share: a workload script, a policy for it, `enclavectl enclave run`."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from enclave_operator.devcluster.processes import free_port
from enclave_operator.pki import LAS_CN, Authority
from tests.support.cas_process import Certificates, stop

ENCLAVECTL = [sys.executable, "-m", "enclave_operator.cli"]


class LASProcess:
    def __init__(
        self,
        log: Path,
        cas: str | None = None,
        cas_ca: Path | None = None,
        extra: tuple[str, ...] = (),
        node: str = "node-a",
    ) -> None:
        self.log, self.cas, self.cas_ca, self.extra, self.node = log, cas, cas_ca, extra, node
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20) -> None:
        argv = [*ENCLAVECTL, "service", "las", f"--port={self.port}", "--host=127.0.0.1"]
        argv += [f"--node={self.node}", *self.extra]
        if self.cas:
            argv.append(f"--cas={self.cas}")
        if self.cas_ca:
            argv.append(f"--cas-ca={self.cas_ca}")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"LAS exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                self.get("/v1/health")
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"LAS did not answer within {timeout}s:\n{self.log.read_text()}")

    def get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{self.address}{path}", timeout=5) as r:
            data: dict[str, Any] = json.loads(r.read())
            return data

    def wait_enrolled(self, timeout: float = 60) -> dict[str, Any]:
        """The version document once LAS says it is enrolled; the last one on timeout."""
        deadline = time.monotonic() + timeout
        version = self.get("/v1/version")
        while not version["enrolled"] and time.monotonic() < deadline:
            time.sleep(0.1)
            version = self.get("/v1/version")
        return version

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


def workload_script(path: Path, tag: str = "") -> Path:
    """An executable script that prints what the runtime gave it: a digest of the secret."""
    path.write_text(
        f"#!{sys.executable}\n"
        f"# {tag}\n"
        "import hashlib, os\n"
        "secret = os.environ.get('DB_PASSWORD', '')\n"
        "print('secret-sha256', hashlib.sha256(secret.encode()).hexdigest())\n"
        "print('greeting', os.environ.get('GREETING', '-'))\n"
    )
    path.chmod(0o755)
    return path


def policy_text(name: str, measurement: str, command: list[str], secret: str) -> str:
    return (
        f"name: {name}\n"
        "services:\n"
        "  - name: app\n"
        f"    measurement: {measurement}\n"
        f"    command: {json.dumps(command)}\n"
        "    environment:\n"
        "      GREETING: hello\n"
        "    secrets:\n"
        "      DB_PASSWORD: db-password\n"
        "secrets:\n"
        "  - name: db-password\n"
        f"    value: {json.dumps(secret)}\n"
    )


def enclave_run(
    argv: list[str],
    config_id: str | None,
    las: str | None,
    cas: str | None,
    ca: Path | None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCONE_")}
    for key, value in (
        ("SCONE_CONFIG_ID", config_id),
        ("SCONE_LAS_ADDR", las),
        ("SCONE_CAS_ADDR", cas),
        ("SCONE_CAS_CA", str(ca) if ca else None),
    ):
        if value is not None:
            env[key] = value
    return subprocess.run(
        [*ENCLAVECTL, "enclave", "run", "--", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def certificates_with_las_client(directory: Path) -> Certificates:
    """Certificates.make's layout, plus ``las.crt``/``las.key``: a LAS client certificate
    (CN enclave-las) and ``stranger.crt``/``.key`` (same CN, another CA)."""
    authority = Authority("test-cas-ca", dt.timedelta(days=2))
    serving = authority.issue("localhost", hosts=["localhost", "127.0.0.1"])
    tls = directory / "tls"
    tls.mkdir(parents=True, exist_ok=True)
    (tls / "tls.crt").write_bytes(serving.cert)
    (tls / "tls.key").write_bytes(serving.key)
    (tls / "ca.crt").write_bytes(authority.cert)
    for name, ca in (("las", authority), ("stranger", Authority("other", dt.timedelta(days=2)))):
        issued = ca.issue(LAS_CN, client=True)
        (directory / f"{name}.crt").write_bytes(issued.cert)
        (directory / f"{name}.key").write_bytes(issued.key)
    return Certificates(directory)
