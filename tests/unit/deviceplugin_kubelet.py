"""A stand-in for the kubelet's device manager (v1.34) on a temporary device-plugins directory.

It behaves as the real one does where the plugin can tell: at start it deletes every socket in
the directory and listens on ``kubelet.sock``; ``Register`` checks the version and resource
name, dials the plugin's endpoint in the same directory and asks for its options before
answering, then follows ``ListAndWatch`` in a thread. Errors are plain gRPC errors (UNKNOWN
with a message), as a Go error returned from a handler is.
"""

from __future__ import annotations

import os
import queue
import socket as sockets
import stat
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from enclave_operator.services.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

WAIT = 20.0  # upper bound for anything the plugin should do "soon"; never a sleep


@dataclass
class Registration:
    request: api_pb2.RegisterRequest
    options: api_pb2.DevicePluginOptions
    stub: api_pb2_grpc.DevicePluginStub
    updates: queue.Queue[list[tuple[str, str]]] = field(default_factory=queue.Queue)

    def next_devices(self, timeout: float = WAIT) -> list[tuple[str, str]]:
        """The next list ListAndWatch sent: (ID, health) pairs."""
        return self.updates.get(timeout=timeout)


class FakeKubelet(api_pb2_grpc.RegistrationServicer):
    def __init__(self, plugin_dir: Path, refuse: str | None = None) -> None:
        self.dir = plugin_dir
        self.refuse = refuse
        self.registrations: queue.Queue[Registration] = queue.Queue()
        self._server: grpc.Server | None = None
        self._channels: list[grpc.Channel] = []

    @property
    def socket(self) -> Path:
        return self.dir / "kubelet.sock"

    def start(self, cleanup: bool = True) -> None:
        """Like the kubelet's CleanupPluginDirectory, then listen on kubelet.sock."""
        for name in os.listdir(self.dir):
            path = self.dir / name
            if stat.S_ISSOCK(os.lstat(path).st_mode) and (cleanup or path == self.socket):
                path.unlink()
        server = grpc.server(ThreadPoolExecutor(max_workers=4))
        api_pb2_grpc.add_RegistrationServicer_to_server(self, server)
        server.add_insecure_port(f"unix:{self.socket}")
        server.start()
        self._server = server

    def stop(self) -> None:
        """A dead kubelet: its connections close, its socket file stays behind."""
        if self._server is not None:
            self._server.stop(None).wait()
            self._server = None
        for channel in self._channels:
            channel.close()
        self._channels.clear()
        if not self.socket.exists():  # grpc removed it; a killed kubelet leaves it
            leftover = sockets.socket(sockets.AF_UNIX)
            leftover.bind(str(self.socket))
            leftover.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def next_registration(self, timeout: float = WAIT) -> Registration:
        return self.registrations.get(timeout=timeout)

    def Register(
        self, request: api_pb2.RegisterRequest, context: grpc.ServicerContext
    ) -> api_pb2.Empty:
        if self.refuse:
            context.abort(grpc.StatusCode.UNKNOWN, self.refuse)
        if request.version != "v1beta1":
            context.abort(
                grpc.StatusCode.UNKNOWN,
                f"requested device plugin version {request.version} is not supported",
            )
        if "/" not in request.resource_name or request.resource_name.startswith("kubernetes.io/"):
            context.abort(
                grpc.StatusCode.UNKNOWN, f"invalid extended resource name: {request.resource_name}"
            )
        channel = grpc.insecure_channel(f"unix:{self.dir / request.endpoint}")
        self._channels.append(channel)
        try:
            grpc.channel_ready_future(channel).result(timeout=10)
            stub = api_pb2_grpc.DevicePluginStub(channel)
            options = stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=10)
        except (grpc.FutureTimeoutError, grpc.RpcError) as e:
            context.abort(grpc.StatusCode.UNKNOWN, f"failed to dial device plugin: {e}")
        registration = Registration(request, options, stub)
        threading.Thread(target=self._follow, args=(registration,), daemon=True).start()
        self.registrations.put(registration)
        return api_pb2.Empty()

    @staticmethod
    def _follow(registration: Registration) -> None:
        try:
            for response in registration.stub.ListAndWatch(api_pb2.Empty()):
                registration.updates.put([(d.ID, d.health) for d in response.devices])
        except grpc.RpcError:
            pass  # the connection closed: a restart of either side
