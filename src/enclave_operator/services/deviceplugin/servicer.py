"""The DevicePlugin gRPC service the kubelet calls on the plugin's socket."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from enclave_operator.services.deviceplugin.devices import (
    DeviceFiles,
    container_allocation,
    device_ids,
    devices,
    preferred,
    scan,
)
from enclave_operator.services.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

Context = grpc.aio.ServicerContext[Any, Any]

OPTIONS = api_pb2.DevicePluginOptions(
    pre_start_required=False, get_preferred_allocation_available=True
)
"""Sent with the registration; the kubelet (v1.34) also asks for them when it connects."""


class SGXDevicePlugin(api_pb2_grpc.DevicePluginServicer):
    """``capacity`` interchangeable devices, all healthy unless SGX device files disappeared."""

    def __init__(self, capacity: int, dev_dir: Path) -> None:
        self.ids = device_ids(capacity)
        self.dev_dir = dev_dir
        self.files = DeviceFiles()
        self.files.update(scan(dev_dir))
        self._changed = asyncio.Condition()
        self._generation = 0
        self._epoch = 0
        self._known_ids = frozenset(self.ids)

    def describe(self) -> str:
        if self.files.simulation:
            return "simulation (no SGX device files)"
        return "hardware (" + ", ".join(f"/dev/{n}" for n in sorted(self.files.known)) + ")"

    async def rescan(self) -> None:
        """Look at the device files again; a change of health goes out on every ListAndWatch."""
        was_simulation = self.files.simulation
        if not self.files.update(scan(self.dev_dir)):
            if was_simulation and not self.files.simulation:
                log.info("SGX device files appeared: now %s", self.describe())
            return
        if self.files.healthy:
            log.info("SGX device files are back: %d devices Healthy", len(self.ids))
        else:
            log.error(
                "SGX device files missing: %s; %d devices reported Unhealthy",
                ", ".join(self.files.missing),
                len(self.ids),
            )
        async with self._changed:
            self._generation += 1
            self._changed.notify_all()

    async def end_streams(self) -> None:
        """End every ListAndWatch stream cleanly, before its server stops (no cancelled RPCs)."""
        async with self._changed:
            self._epoch += 1
            self._changed.notify_all()

    async def GetDevicePluginOptions(
        self, request: api_pb2.Empty, context: Context
    ) -> api_pb2.DevicePluginOptions:
        return OPTIONS

    async def ListAndWatch(
        self, request: api_pb2.Empty, context: Context
    ) -> AsyncIterator[api_pb2.ListAndWatchResponse]:
        """The full list now and again after every change of health, until the kubelet leaves."""
        seen, epoch = -1, self._epoch
        while True:
            async with self._changed:
                while self._generation == seen and self._epoch == epoch:
                    await self._changed.wait()
                if self._epoch != epoch:
                    return
                seen = self._generation
                healthy = self.files.healthy
            log.info(
                "ListAndWatch: %d devices %s", len(self.ids), "Healthy" if healthy else "Unhealthy"
            )
            yield api_pb2.ListAndWatchResponse(devices=devices(self.ids, healthy))

    async def GetPreferredAllocation(
        self, request: api_pb2.PreferredAllocationRequest, context: Context
    ) -> api_pb2.PreferredAllocationResponse:
        return api_pb2.PreferredAllocationResponse(
            container_responses=[
                api_pb2.ContainerPreferredAllocationResponse(
                    deviceIDs=preferred(
                        list(r.available_deviceIDs),
                        list(r.must_include_deviceIDs),
                        r.allocation_size,
                    )
                )
                for r in request.container_requests
            ]
        )

    async def Allocate(
        self, request: api_pb2.AllocateRequest, context: Context
    ) -> api_pb2.AllocateResponse:
        """The device files (or simulation) for each container; fails on unknown devices or
        when the node's SGX device files vanished (after reporting them Unhealthy)."""
        await self.rescan()
        asked = [d for r in request.container_requests for d in r.devices_ids]
        unknown = sorted(set(asked) - self._known_ids)
        if unknown:
            log.error("Allocate: unknown devices %s", ", ".join(unknown))
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"unknown devices {', '.join(unknown)} (this plugin has sgx-0 … sgx-"
                f"{len(self.ids) - 1})",
            )
        if not self.files.healthy:
            message = f"SGX device files missing on this node: {', '.join(self.files.missing)}"
            log.error("Allocate of %s refused: %s", ", ".join(asked), message)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, message)
        responses = [container_allocation(self.files) for _ in request.container_requests]
        log.info("Allocate: %s in %s", ", ".join(asked) or "nothing", self.describe())
        return api_pb2.AllocateResponse(container_responses=responses)

    async def PreStartContainer(
        self, request: api_pb2.PreStartContainerRequest, context: Context
    ) -> api_pb2.PreStartContainerResponse:
        """Not required (see OPTIONS); answered anyway, as the API asks."""
        return api_pb2.PreStartContainerResponse()
