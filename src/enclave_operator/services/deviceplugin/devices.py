"""The SGX devices this plugin advertises and what a container gets when it is allocated one.

One device is one SGX-using pod, not a piece of hardware: every device grants the same device
files. Pure code over a directory listing, so tests point it at a temporary `/dev`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from enclave_operator.services.deviceplugin.v1beta1 import api_pb2

RESOURCE_NAME = "sgx.k8s.io/sgx"
API_VERSION = "v1beta1"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"

DEVICE_FILES = ("sgx_enclave", "sgx_provision", "isgx")
"""In-kernel driver (Linux ≥ 5.11): sgx_enclave and sgx_provision; out-of-tree driver: isgx."""

HOST_DEV = "/dev"
"""Where the files are on the host, whatever directory the plugin sees them in."""


def device_ids(capacity: int) -> list[str]:
    """Stable IDs, so a restarted plugin advertises the devices the kubelet checkpointed."""
    return [f"sgx-{i}" for i in range(capacity)]


def scan(dev_dir: Path) -> frozenset[str]:
    """The SGX device files present in ``dev_dir`` (a few stats, cheap enough to poll)."""
    return frozenset(name for name in DEVICE_FILES if os.path.exists(dev_dir / name))


@dataclass
class DeviceFiles:
    """The device files seen so far: a file that was there and is gone makes devices unhealthy.

    Remembering every file ever seen (rather than comparing with the first scan) lets a node
    whose driver loads after the plugin started move from simulation to hardware.
    """

    known: set[str] = field(default_factory=set)
    present: frozenset[str] = frozenset()

    def update(self, present: frozenset[str]) -> bool:
        """Record a scan; True when the health changed."""
        before = self.healthy
        self.known |= present
        self.present = present
        return self.healthy != before

    @property
    def healthy(self) -> bool:
        return self.known <= self.present

    @property
    def missing(self) -> list[str]:
        return [f"{HOST_DEV}/{name}" for name in sorted(self.known - self.present)]

    @property
    def simulation(self) -> bool:
        """No SGX device file was ever seen: enclaves run in simulation mode."""
        return not self.known


def devices(ids: Iterable[str], healthy: bool) -> list[api_pb2.Device]:
    health = HEALTHY if healthy else UNHEALTHY
    return [api_pb2.Device(ID=i, health=health) for i in ids]


def container_allocation(files: DeviceFiles) -> api_pb2.ContainerAllocateResponse:
    """The device files as DeviceSpecs and the mode in the environment.

    ``SGX_MODE`` (Intel SDK, Gramine) and ``SCONE_MODE`` (SCONE) tell the runtime whether to
    run enclaves in hardware (``HW``) or in simulation (``SIM``), so a workload on a node
    without SGX starts and says that it is simulated instead of failing to open a device.
    """
    mode = "SIM" if files.simulation else "HW"
    specs = [
        api_pb2.DeviceSpec(
            container_path=f"{HOST_DEV}/{name}", host_path=f"{HOST_DEV}/{name}", permissions="rw"
        )
        for name in sorted(files.present)
    ]
    return api_pb2.ContainerAllocateResponse(
        envs={"SGX_MODE": mode, "SCONE_MODE": mode}, devices=specs
    )


def preferred(available: list[str], must_include: list[str], size: int) -> list[str]:
    """Devices are interchangeable: the required ones, then the lowest-numbered available."""
    chosen = list(dict.fromkeys(must_include))
    for device in sorted(available, key=_number):
        if len(chosen) >= size:
            break
        if device not in chosen:
            chosen.append(device)
    return chosen[: max(size, len(must_include))]


def _number(device: str) -> tuple[int, str]:
    _, _, n = device.rpartition("-")
    return (int(n), device) if n.isdigit() else (1 << 62, device)
