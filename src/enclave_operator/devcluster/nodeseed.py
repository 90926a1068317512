"""A containerd root with the images already imported and unpacked, cloned into each node.

Importing the ~500 MB project image into a fresh containerd takes 20-30 s (copy into the
content store, then unpack into overlayfs snapshots), which would be most of `up`. So it is
done once per set of images, by a containerd of its own with no CRI, into a template under
~/.cache/enclave-operator/images; each node's containerd root is then a copy of it in which
files are hard links (immutable blobs and committed layers, which overlayfs never writes to)
and only the bolt databases are real copies.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from enclave_operator.devcluster import image, oci, processes


class SeedError(RuntimeError):
    """The template containerd failed; the message carries its log."""


def _config(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_text(f"""version = 2
root = "{tmp / "root"}"
state = "{tmp / "state"}"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{tmp / "c.sock"}"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{tmp / "opt"}"
""")
    return path


def template(images: list[oci.Image]) -> Path:
    """The cached containerd root holding `images`, made when missing."""
    key = hashlib.sha256(json.dumps([i.layout.name for i in images]).encode()).hexdigest()[:16]
    out = image.cache_dir() / f"containerd-{key}"
    if (out / "root").is_dir():
        return out / "root"
    tmp = Path(tempfile.mkdtemp(prefix="seed-", dir=image.cache_dir()))
    log = tmp / "containerd.log"
    pid = processes.spawn(["/usr/bin/containerd", "--config", str(_config(tmp))], log)
    try:
        deadline = time.monotonic() + 30
        while not _answers(tmp / "c.sock"):
            if not processes.alive(pid) or time.monotonic() > deadline:
                raise SeedError(f"containerd for the image template:\n{processes.tail(log)}")
            time.sleep(0.1)
        image.import_into(tmp / "c.sock", images)
    finally:
        processes.stop(pid, "/usr/bin/containerd")
        subprocess.run(["umount", "-R", str(tmp / "state")], capture_output=True, check=False)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    (tmp / "root").rename(out / "root")
    shutil.rmtree(tmp, ignore_errors=True)
    for old in image.cache_dir().glob("containerd-*"):  # nodes keep their hard links
        if old != out:
            shutil.rmtree(old, ignore_errors=True)
    return out / "root"


def clone(root: Path, dest: Path) -> None:
    """dest: a containerd root sharing the template's files, with its own databases."""
    subprocess.run(["cp", "-al", str(root), str(dest)], check=True)
    for db in dest.rglob("*.db"):
        db.unlink()
        shutil.copy2(root / db.relative_to(dest), db)


def _answers(socket: Path) -> bool:
    proc = subprocess.run(["ctr", "-a", str(socket), "version"], capture_output=True, check=False)
    return proc.returncode == 0
