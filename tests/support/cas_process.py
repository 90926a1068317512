"""CAS as a local process on loopback, with a CA, its serving certificate and the operator's
client certificate, as `enclavectl install` would make them."""

from __future__ import annotations

import datetime as dt
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from enclave_operator.devcluster.processes import free_port
from enclave_operator.pki import OPERATOR_CN, Authority


@dataclass
class Certificates:
    """A CA, the CAS's serving certificate (tls dir) and the operator's client certificate."""

    directory: Path

    @classmethod
    def make(cls, directory: Path) -> Certificates:
        authority = Authority("test-cas-ca", dt.timedelta(days=2))
        serving = authority.issue("localhost", hosts=["localhost", "127.0.0.1"])
        client = authority.issue(OPERATOR_CN, client=True)
        tls = directory / "tls"
        tls.mkdir(parents=True, exist_ok=True)
        (tls / "tls.crt").write_bytes(serving.cert)
        (tls / "tls.key").write_bytes(serving.key)
        (tls / "ca.crt").write_bytes(authority.cert)
        (directory / "client.crt").write_bytes(client.cert)
        (directory / "client.key").write_bytes(client.key)
        return cls(directory)

    @property
    def tls_dir(self) -> Path:
        return self.directory / "tls"

    @property
    def ca(self) -> Path:
        return self.tls_dir / "ca.crt"

    @property
    def client(self) -> tuple[Path, Path]:
        return self.directory / "client.crt", self.directory / "client.key"


class CASProcess:
    """`enclavectl service cas` on 127.0.0.1 with free ports; start, stop, restart."""

    def __init__(self, db_dir: Path, certs: Certificates | None, log: Path) -> None:
        self.db_dir, self.certs, self.log = db_dir, certs, log
        self.client_port, self.enclave_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    def start(self, timeout: float = 20) -> None:
        argv = [
            sys.executable,
            "-m",
            "enclave_operator.cli",
            "service",
            "cas",
            f"--db-dir={self.db_dir}",
            f"--client-port={self.client_port}",
            f"--enclave-port={self.enclave_port}",
            "--host=127.0.0.1",
        ]
        if self.certs:
            argv.append(f"--tls-dir={self.certs.tls_dir}")
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"CAS exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:  # a self-signed CAS writes its CA file at start
                context = ssl.create_default_context(cafile=str(self.ca_file()))
                with urllib.request.urlopen(f"{self.url}/v1/health", context=context, timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"CAS did not answer within {timeout}s:\n{self.log.read_text()}")

    def ca_file(self) -> Path:
        if self.certs:
            return self.certs.ca
        return self.db_dir / "self-signed-ca.crt"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (the services close their stores), SIGKILL after 10 s."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
