"""Pushing images to the dev cluster's registry with the distribution API (blob uploads, a
manifest PUT), straight from the OCI layouts `image.py` builds: no skopeo, no Docker, and the
digests stay those the real node's containerd already holds, so a pull only fetches the
manifest. The project's own layers are hard-linked into the registry's storage first."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from enclave_operator.devcluster.registry import MANIFEST, Registry, RegistryError


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
