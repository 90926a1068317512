"""The project's image and a pause image, made without a Docker engine or a registry.

The Dockerfile's recipe, done with local tools: the base is Debian bookworm's python3 made by
mmdebstrap from Debian's archive (the Dockerfile's python:3.11-slim-bookworm cannot be pulled
here); the second layer is the package and its dependencies installed by pip into
/usr/local/lib/python3.11/dist-packages, an `enclavectl` launcher and the helm built from its
Go module (rebuilt when pyproject.toml changes); the third layer is the package alone and the
operator's helm server (tools/helm-server; rebuilt in seconds when either changes); uid 65532,
HOME=/tmp, `enclavectl operator run`. Layers are plain tars written into an OCI layout, which
`ctr images import` loads into the node's containerd. Each layer is cached under
~/.cache/enclave-operator/images, named by the hash of what goes into it; layers no current
image uses are deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from enclave_operator.devcluster import binaries
from enclave_operator.devcluster.oci import Image, oci_layout

APP_IMAGE = "docker.io/library/enclave-operator:0.1.0"
PYTHON_SITE = "usr/local/lib/python3.11/dist-packages"
# Bump when the recipe below changes in a way the hashed inputs do not show.
RECIPE = "1"
BASE_ARGS = [
    "mmdebstrap",
    "--quiet",
    "--variant=minbase",
    "--include=python3,ca-certificates",
    "--mode=root",
    "--format=tar",
    "--customize-hook=echo 'enclave:x:65532:65532::/tmp:/usr/sbin/nologin' >> \"$1/etc/passwd\"",
    "--customize-hook=echo 'enclave:x:65532:' >> \"$1/etc/group\"",
    '--customize-hook=rm -rf "$1"/usr/share/doc/* "$1"/usr/share/man/* '
    '"$1"/var/cache/apt/* "$1"/var/lib/apt/lists/*',
    "bookworm",
]
MIRROR = "http://deb.debian.org/debian"
LAUNCHER = """#!/usr/bin/python3
import sys

from enclave_operator.cli.main import main

sys.exit(main())
"""
ENV = [
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/tmp",
    "PYTHONDONTWRITEBYTECODE=1",
    "PYTHONUNBUFFERED=1",
]


class ImageError(RuntimeError):
    """A build step failed; the message carries its output."""


def cache_dir() -> Path:
    d = binaries.cache_root() / "images"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _run(argv: list[str], **kw: Any) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).strip().splitlines()[-20:]
        raise ImageError(f"{argv[0]} failed (exit {proc.returncode}):\n" + "\n".join(out))


def _tree_hash(*paths: Path) -> str:
    h = hashlib.sha256(RECIPE.encode())
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*"))
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts and ".egg-info" not in str(f):
                h.update(str(f.relative_to(root.parent)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def base_layer() -> Path:
    """Debian bookworm minbase with python3 and the image's user, made by mmdebstrap."""
    key = hashlib.sha256(json.dumps([RECIPE, *BASE_ARGS, MIRROR]).encode()).hexdigest()[:16]
    out = cache_dir() / f"base-{key}.tar"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        _run([*BASE_ARGS, str(tmp), MIRROR])
        tmp.rename(out)
    return out


def _pip_target(site: Path, source: Path, *flags: str) -> None:
    argv = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    argv += ["--no-warn-script-location", *flags, "--target", str(site), str(source)]
    _run(argv, env={**os.environ, "PIP_NO_INPUT": "1"})
    shutil.rmtree(site / "bin", ignore_errors=True)  # scripts with this host's shebang


def _tar_layer(stage: Path, out: Path) -> Path:
    """A layer of stage/usr (no entry for "/": a layer must not change its permissions)."""
    tmp_out = out.with_suffix(".tmp")
    _run(["tar", "--numeric-owner", "--owner=0", "--group=0", "-C", str(stage), "-cf",
          str(tmp_out), "usr"])  # fmt: skip
    tmp_out.rename(out)
    return out


def deps_layer(source: Path, helm: Path) -> Path:
    """The package's dependencies, the `enclavectl` launcher and helm: the second layer,
    rebuilt only when pyproject.toml (or helm) changes."""
    key = _tree_hash(source / "pyproject.toml", helm)
    out = cache_dir() / f"deps-{key}.tar"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(prefix="enclave-image-") as tmp:
        stage = Path(tmp)
        site = stage / PYTHON_SITE
        site.mkdir(parents=True)
        _pip_target(site, source)
        for own in site.glob("enclave_operator*"):  # the project itself is the third layer
            shutil.rmtree(own)
        bindir = stage / "usr/local/bin"
        bindir.mkdir(parents=True, exist_ok=True)
        (bindir / "enclavectl").write_text(LAUNCHER)
        (bindir / "enclavectl").chmod(0o755)
        shutil.copy2(helm, bindir / "helm")
        return _tar_layer(stage, out)


def project_layer(source: Path, helm_server: Path) -> Path:
    """The package alone and the operator's helm server (a few seconds to rebuild when the
    source changes). The server's path already names its source (build-tools.sh)."""
    tree = _tree_hash(source / "pyproject.toml", source / "src")
    key = hashlib.sha256(f"{tree} {helm_server}".encode()).hexdigest()[:16]
    out = cache_dir() / f"app-{key}.tar"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(prefix="enclave-image-") as tmp:
        stage = Path(tmp)
        site = stage / PYTHON_SITE
        site.mkdir(parents=True)
        _pip_target(site, source, "--no-deps")
        bindir = stage / "usr/local/bin"
        bindir.mkdir(parents=True)
        shutil.copy2(helm_server, bindir / "helm-server")
        return _tar_layer(stage, out)


def single_file_layer(binary: Path, name: str) -> Path:
    """A layer holding one static binary at /<name> (the pause image)."""
    key = _tree_hash(binary)
    out = cache_dir() / f"{name}-{key}.tar"
    if not out.exists():
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy2(binary, Path(tmp) / name)
            _run(
                [
                    "tar",
                    "--numeric-owner",
                    "--owner=0",
                    "--group=0",
                    "-C",
                    tmp,
                    "-cf",
                    str(out),
                    name,
                ]
            )
    return out


def build_all(tools: binaries.Toolset, source: Path, pause_image: str) -> tuple[Image, list[Image]]:
    """The project's image, and what a node's containerd gets in advance: the pause image and
    an image of the project's first two layers (so importing the project's is quick)."""
    lower = [base_layer(), deps_layer(source, tools.path("helm"))]
    config = {
        "Env": ENV,
        "Cmd": ["enclavectl", "operator", "run"],
        "User": "65532:65532",
        "WorkingDir": "/",
    }
    cache = cache_dir()
    app = oci_layout(
        APP_IMAGE, [*lower, project_layer(source, tools.path("helm-server"))], config, cache
    )
    base = oci_layout(f"{APP_IMAGE}-base", lower, config, cache)
    pause = oci_layout(
        pause_image,
        [single_file_layer(tools.path("pause"), "pause")],
        {"Entrypoint": ["/pause"], "User": "65535:65535"},
        cache,
    )
    _prune({app.layout, base.layout, pause.layout})
    seeded = frozenset(f.name for f in (base.layout / "blobs" / "sha256").iterdir())
    return Image(app.name, app.layout, seeded), [base, pause]


def _prune(keep: set[Path]) -> None:
    """Drop cached layouts and layers no current layout uses (nodes hold hard links)."""
    d = cache_dir()
    for layout in d.glob("layout-*"):
        if layout not in keep:
            shutil.rmtree(layout, ignore_errors=True)
    used = {f.stat().st_ino for layout in keep for f in (layout / "blobs" / "sha256").iterdir()}
    for layer in [*d.glob("app-*.tar"), *d.glob("deps-*.tar")]:
        if layer.stat().st_ino not in used:
            layer.unlink()
            layer.with_suffix(".sha256").unlink(missing_ok=True)


def import_into(socket: Path, images: list[Image]) -> None:
    """Load each layout into containerd's k8s.io namespace, where the kubelet finds it."""
    for image in images:
        tar = subprocess.Popen(
            ["tar", "-C", str(image.layout), "-chf", "-", *image.files()], stdout=subprocess.PIPE
        )
        try:
            _run(
                ["ctr", "-a", str(socket), "-n", "k8s.io", "images", "import", "-"],
                stdin=tar.stdout,
            )
        finally:
            tar.wait()
