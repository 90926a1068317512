"""What a real node leaves on the host outside its directory, and removing it again: cgroups,
mounts, containerd shims, pod network namespaces, CNI result files, /var/log/containers links
and the kernel settings the kubelet changes at start-up."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
CNI_RESULTS = Path("/var/lib/cni/results")
CONTAINER_LOGS = Path("/var/log/containers")
# The kubelet sets these at start (setupKernelTunables) unless told to fail instead.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)


def hierarchies() -> list[Path]:
    """Every mounted cgroup hierarchy (v1 controllers, name=systemd, the unified one)."""
    return sorted(p for p in CGROUP_FS.iterdir() if (p / "cgroup.procs").exists())


def create_cgroup_root(name: str) -> None:
    """The kubelet refuses a cgroup root that does not exist in every hierarchy."""
    for h in hierarchies():
        d = h / name.strip("/")
        d.mkdir(exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):  # a new cpuset starts empty
            if (h / f).exists() and not (d / f).read_text().strip():
                (d / f).write_text((h / f).read_text())


def _subtree(h: Path, name: str) -> list[Path]:
    top = h / name.strip("/")
    if not top.is_dir():
        return []
    dirs = [Path(d) for d, _, _ in os.walk(top)]
    return sorted(dirs, key=lambda d: len(d.parts), reverse=True)


def kill_cgroup_processes(name: str) -> None:
    """SIGKILL everything running under the cgroup root, until nothing is left."""
    for _ in range(50):
        pids = {
            int(line)
            for h in hierarchies()
            for d in _subtree(h, name)
            for line in _read(d / "cgroup.procs").split()
        }
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def remove_cgroup_root(name: str) -> None:
    for h in hierarchies():
        for d in _subtree(h, name):
            with contextlib.suppress(OSError):
                d.rmdir()


def kill_matching(needle: str) -> None:
    """SIGKILL processes whose command line names `needle` (containerd shims of our socket)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if needle.encode() in cmdline and int(proc.name) != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(proc.name), signal.SIGKILL)


def mounts_under(*roots: Path) -> list[str]:
    """Mount points below any of `roots`, deepest (latest) first."""
    points: list[str] = []
    for line in _read(Path("/proc/self/mountinfo")).splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(f"{r}/") for r in roots):
            points.append(point)
    return list(reversed(points))


def unmount_under(*roots: Path) -> None:
    for _ in range(3):  # a shared mount can show up again through propagation once
        points = mounts_under(*roots)
        if not points:
            return
        for point in points:
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_cni_results(network: str) -> None:
    """Our CNI result files, and the pod network namespaces they name (bind mounts in
    /run/netns that containerd would have removed on a graceful stop)."""
    if not CNI_RESULTS.is_dir():
        return
    ours = list(CNI_RESULTS.glob(f"{network}-*"))
    # containerd sets up each sandbox's lo through the network "cni-loopback" too
    ids = {f.name.removeprefix(f"{network}-").rsplit("-", 1)[0] for f in ours}
    ours += [f for f in CNI_RESULTS.glob("cni-loopback-*") if f.name[13:].rsplit("-", 1)[0] in ids]
    for f in ours:
        try:
            cached = json.loads(f.read_text())
        except (OSError, ValueError):
            cached = {}
        for iface in cached.get("result", {}).get("interfaces", []):
            sandbox = iface.get("sandbox")
            if sandbox and sandbox.startswith("/var/run/netns/"):
                path = Path(sandbox.replace("/var/run/", "/run/", 1))
                subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
                path.unlink(missing_ok=True)
        f.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        CNI_RESULTS.rmdir()
        CNI_RESULTS.parent.rmdir()


def remove_container_log_links(pod_logs: Path) -> None:
    if not CONTAINER_LOGS.is_dir():
        return
    for link in CONTAINER_LOGS.iterdir():
        with contextlib.suppress(OSError):
            if link.is_symlink() and os.readlink(link).startswith(f"{pod_logs}/"):
                link.unlink()


def remove_if_empty(d: Path) -> None:
    """rmdir, after unmounting it when it is an (empty) mount point, as /run/netns is."""
    try:
        if any(d.iterdir()):
            return
    except OSError:
        return
    for _ in range(3):  # a bind mount onto itself (Path.is_mount() misses it), maybe twice
        if str(d) not in mounts_under(d):
            break
        subprocess.run(["umount", str(d)], capture_output=True, check=False)
    with contextlib.suppress(OSError):
        d.rmdir()


def read_sysctls() -> dict[str, str]:
    return {k: _read(Path("/proc/sys") / k).strip() for k in KUBELET_SYSCTLS}


def restore_sysctls(saved: dict[str, str]) -> None:
    for key, value in saved.items():
        with contextlib.suppress(OSError):
            path = Path("/proc/sys") / key
            if value and path.read_text().strip() != value:
                path.write_text(value)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
