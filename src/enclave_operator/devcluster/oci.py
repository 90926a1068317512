"""OCI image layouts written from plain layer tars, which `ctr images import` loads into
containerd: no Docker engine or registry involved. A layout is named by the hash of its
inputs, so an unchanged image is not written again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Image:
    name: str
    layout: Path  # an OCI image layout directory
    # blobs the target containerd already holds (seeded): left out of the import's stream
    preloaded: frozenset[str] = frozenset()

    def files(self) -> list[str]:
        blobs = sorted(f.name for f in (self.layout / "blobs" / "sha256").iterdir())
        return ["oci-layout", "index.json", *(f"blobs/sha256/{b}" for b in blobs
                                              if b not in self.preloaded)]  # fmt: skip


def sha256_file(path: Path) -> str:
    """Digest of a layer file, remembered beside it."""
    memo = path.with_suffix(".sha256")
    if memo.exists() and memo.stat().st_mtime >= path.stat().st_mtime:
        return memo.read_text().strip()
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    memo.write_text(h.hexdigest())
    return h.hexdigest()


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def oci_layout(name: str, layers: list[Path], config: dict[str, Any], cache: Path) -> Image:
    """An OCI image layout of `layers` (linked, not copied) named `name` for containerd, kept
    in ``cache`` under a name made from its inputs."""
    digests = [sha256_file(layer) for layer in layers]
    key = hashlib.sha256(json.dumps([name, digests, config]).encode()).hexdigest()[:16]
    layout = cache / f"layout-{key}"
    if (layout / "index.json").exists():
        return Image(name, layout)
    tmp = Path(tempfile.mkdtemp(prefix="tmp-layout-", dir=cache))
    blobs = tmp / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for layer, digest in zip(layers, digests, strict=True):
        os.link(layer, blobs / digest)
    platform = {"architecture": "amd64", "os": "linux"}
    cfg = _blob(
        tmp,
        json.dumps(
            {
                **platform,
                "config": config,
                "rootfs": {"type": "layers", "diff_ids": [f"sha256:{d}" for d in digests]},
            }
        ).encode(),
    )
    layer_descs = [
        {
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": f"sha256:{d}",
            "size": layer.stat().st_size,
        }
        for layer, d in zip(layers, digests, strict=True)
    ]
    manifest = _blob(
        tmp,
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **cfg},
                "layers": layer_descs,
            }
        ).encode(),
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **manifest,
                "platform": platform,
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1],
                },
            }
        ],
    }
    (tmp / "index.json").write_text(json.dumps(index))
    (tmp / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    shutil.rmtree(layout, ignore_errors=True)
    tmp.rename(layout)
    return Image(name, layout)
