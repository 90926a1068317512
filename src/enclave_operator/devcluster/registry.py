"""The dev cluster's OCI registry: Debian's docker-registry (distribution 2.8) with TLS from
the cluster's CA and htpasswd basic auth, listening where the real node reaches it (the host
end of its veth, else loopback), its data in the cluster's directory so `down` removes it.

`push` puts images into it; `trust_on_node` makes the real node's containerd trust it.
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from enclave_operator.devcluster import processes
from enclave_operator.devcluster.pki import CertificateAuthority
from enclave_operator.devcluster.state import ComponentState

BINARY = "/usr/bin/docker-registry"
HTPASSWD = "/usr/bin/htpasswd"
USER = "enclave"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
STARTUP_TIMEOUT = 30.0


class RegistryError(RuntimeError):
    """The registry could not start, or refused a push; the message says why."""


@dataclass(frozen=True)
class Registry:
    """Where the registry is and how to log in; `registry.json` in the cluster's directory."""

    address: str  # host:port, as image references name it
    username: str
    password: str
    ca: str  # the cluster CA's certificate file

    @classmethod
    def load(cls, directory: Path) -> Registry | None:
        try:
            return cls(**json.loads((directory / "registry.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def image(self, repository: str, tag: str) -> str:
        return f"{self.address}/{repository}:{tag}"

    def dockerconfig(self, username: str | None = None, password: str | None = None) -> str:
        """A `.dockerconfigjson` for this registry (other credentials to test refusals)."""
        user, pw = username or self.username, password or self.password
        auth = base64.b64encode(f"{user}:{pw}".encode()).decode()
        return json.dumps(
            {"auths": {self.address: {"username": user, "password": pw, "auth": auth}}}
        )

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca)

    def request(
        self, method: str, path: str, data: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, dict[str, str]]:
        """One authenticated request to the distribution API; (status, body, headers)."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        url = path if path.startswith("https://") else f"https://{self.address}{path}"
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Authorization", f"Basic {token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=120, context=self.ssl_context()) as resp:
                return resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def tags(self, repository: str) -> list[str]:
        status, body, _ = self.request("GET", f"/v2/{repository}/tags/list")
        if status == 404:
            return []
        if status != 200:
            raise RegistryError(f"tags of {repository}: {status} {body[:200]!r}")
        return list(json.loads(body).get("tags") or [])


def available() -> bool:
    return Path(BINARY).exists() and Path(HTPASSWD).exists()


def ensure_installed(script: Path | None) -> None:
    """Debian's docker-registry and apache2-utils, through the checkout's setup script."""
    if available():
        return
    setup = script.parent / "setup-registry.sh" if script else None
    if setup is None or not setup.exists():
        raise RegistryError(
            "missing docker-registry: apt-get install docker-registry apache2-utils"
        )
    proc = subprocess.run(["bash", str(setup)], capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not available():
        raise RegistryError(f"{setup} failed:\n{proc.stdout}{proc.stderr}")


def start(directory: Path, ca: CertificateAuthority, bind: str) -> tuple[Registry, ComponentState]:
    """Write the configuration, the certificate and the password file; start the registry
    and wait until it answers (401 without credentials: it is up and asks for them)."""
    root = directory / "registry"
    (root / "data").mkdir(parents=True, mode=0o700)
    port = processes.free_port()
    address = f"{bind}:{port}"
    pair = ca.issue("registry", "enclave-registry", hosts=(bind, "localhost", "127.0.0.1"))
    password = secrets.token_urlsafe(18)
    htpasswd = subprocess.run(
        [HTPASSWD, "-Bbn", USER, password], capture_output=True, text=True, check=True
    ).stdout
    (root / "htpasswd").write_text(htpasswd)
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(root / "data")},
            "delete": {"enabled": True},
        },
        "http": {
            "addr": address,
            "tls": {"certificate": str(pair.cert), "key": str(pair.key)},
            "headers": {"X-Content-Type-Options": ["nosniff"]},
        },
        "auth": {"htpasswd": {"realm": "enclave-dev-cluster", "path": str(root / "htpasswd")}},
    }
    (root / "config.yml").write_text(json.dumps(config, indent=2))  # YAML is a superset
    reg = Registry(address, USER, password, str(ca.pair.cert))
    record = directory / "registry.json"
    record.write_text(json.dumps(asdict(reg)))
    record.chmod(0o600)
    log = directory / "logs" / "registry.log"
    log.parent.mkdir(exist_ok=True)
    pid = processes.spawn([BINARY, "serve", str(root / "config.yml")], log)
    comp = ComponentState("registry", pid, BINARY, f"https://{address}/v2/")
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if _answers(reg):
            return reg, comp
        if not processes.alive(pid):
            raise RegistryError(f"registry exited during start-up:\n{processes.tail(log)}")
        time.sleep(0.1)
    processes.stop(pid, BINARY)
    raise RegistryError(f"registry not answering at {address}:\n{processes.tail(log)}")


def _answers(reg: Registry) -> bool:
    try:
        with urllib.request.urlopen(
            f"https://{reg.address}/v2/", timeout=2, context=reg.ssl_context()
        ) as resp:
            return resp.status in (200, 401)
    except urllib.error.HTTPError as e:
        return e.code == 401
    except (urllib.error.URLError, OSError):
        return False


def trust_on_node(node_dir: Path, reg: Registry) -> None:
    """containerd's hosts.toml for the registry: pull over TLS verified with the cluster CA
    (containerd reads it at each pull; `nodeconf` points config_path at certs.d)."""
    host = node_dir / "certs.d" / reg.address
    host.mkdir(parents=True, exist_ok=True)
    (host / "hosts.toml").write_text(
        f'server = "https://{reg.address}"\n\n'
        f'[host."https://{reg.address}"]\n'
        '  capabilities = ["pull", "resolve"]\n'
        f'  ca = "{reg.ca}"\n'
    )
