"""The dev cluster's OCI registry: Debian's docker-registry (distribution 2.8) with TLS from
the cluster's CA and htpasswd basic auth, listening where the real node reaches it (the host
end of its veth, else loopback), its data in the cluster's directory so `down` removes it.

Images are pushed with the distribution API from Python (blob upload, manifest PUT) straight
from the OCI layouts `image.py` builds: no skopeo, no Docker, and the digests stay those the
node's containerd already holds, so a pull from here only fetches the manifest.
"""

from __future__ import annotations

import base64
import json
import secrets
import shutil
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


def push_layout(
    reg: Registry, layout: Path, repository: str, tag: str, storage: Path | None = None
) -> str:
    """Push the (single) image of an OCI layout as `repository:tag`; returns its reference.
    Blobs the registry already has are not sent again. With `storage` (the registry's own
    filesystem root, when it is ours) the layers are hard-linked into it first, as the
    registry itself lays them out, and only the manifest goes through the API: the project's
    500 MB take milliseconds instead of seconds."""
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    blobs = layout / "blobs" / "sha256"
    manifest = (blobs / desc["digest"].split(":", 1)[1]).read_bytes()
    doc = json.loads(manifest)
    for blob in [doc["config"], *doc["layers"]]:
        hexdigest = blob["digest"].split(":", 1)[1]
        if storage is not None:
            _link_blob(storage, repository, hexdigest, blobs / hexdigest)
        _push_blob(reg, repository, blob["digest"], blobs / hexdigest)
    media = doc.get("mediaType") or desc.get("mediaType") or MANIFEST
    status, body, _ = reg.request(
        "PUT", f"/v2/{repository}/manifests/{tag}", manifest, {"Content-Type": media}
    )
    if status != 201:
        raise RegistryError(f"manifest {repository}:{tag}: {status} {body[:300]!r}")
    return reg.image(repository, tag)


def push_bytes(reg: Registry, repository: str, tag: str, layer: bytes, label: str) -> str:
    """A tiny image (one layer of `layer`, a config naming `label`) for tags that need not
    run: what autoUpdate reads is the tag list, and the DaemonSet's spec shows the move."""
    import hashlib
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        layout = Path(tmp)
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)

        def put(data: bytes) -> dict[str, Any]:
            digest = hashlib.sha256(data).hexdigest()
            (blobs / digest).write_bytes(data)
            return {"digest": f"sha256:{digest}", "size": len(data)}

        diff = hashlib.sha256(layer).hexdigest()
        config = put(
            json.dumps(
                {
                    "architecture": "amd64",
                    "os": "linux",
                    "config": {"Labels": {"enclave.dev/test": label}},
                    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff}"]},
                }
            ).encode()
        )
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **put(layer)}],
        }
        desc = {"mediaType": MANIFEST, **put(json.dumps(manifest).encode())}
        (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [desc]}))
        return push_layout(reg, layout, repository, tag)


def _link_blob(storage: Path, repository: str, hexdigest: str, source: Path) -> None:
    """distribution 2.x's filesystem layout: the blob's data, and the repository's link."""
    v2 = storage / "docker" / "registry" / "v2"
    data = v2 / "blobs" / "sha256" / hexdigest[:2] / hexdigest / "data"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        try:
            data.hardlink_to(source)
        except OSError:  # another file system: copy
            shutil.copyfile(source, data)
    link = v2 / "repositories" / repository / "_layers" / "sha256" / hexdigest / "link"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.write_text(f"sha256:{hexdigest}")


def storage_of(directory: Path) -> Path:
    return directory / "registry" / "data"


def _push_blob(reg: Registry, repository: str, digest: str, path: Path) -> None:
    status, _, _ = reg.request("HEAD", f"/v2/{repository}/blobs/{digest}")
    if status == 200:
        return
    status, body, headers = reg.request("POST", f"/v2/{repository}/blobs/uploads/")
    location = headers.get("Location")
    if status != 202 or not location:
        raise RegistryError(f"upload of {digest} not started: {status} {body[:200]!r}")
    if location.startswith("/"):
        location = f"https://{reg.address}{location}"
    sep = "&" if "?" in location else "?"
    size = path.stat().st_size
    with path.open("rb") as f:
        status, body, _ = reg.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            f,
            {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        )
    if status != 201:
        raise RegistryError(f"upload of {digest}: {status} {body[:200]!r}")


def remove(directory: Path) -> None:
    """The registry's data and files (the process is stopped with the other components)."""
    shutil.rmtree(directory / "registry", ignore_errors=True)
    (directory / "registry.json").unlink(missing_ok=True)
