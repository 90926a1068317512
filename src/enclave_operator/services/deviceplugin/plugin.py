"""The plugin's life: serve on a socket in the kubelet's directory, register, follow the kubelet.

A restarted kubelet deletes every socket in its device-plugins directory and creates a new
``kubelet.sock``; it forgets plugins until they register again. So once a second the plugin
stats both sockets (two syscalls; inotify would need a dependency and buys nothing at this
rate): a new ``kubelet.sock`` means register again, a vanished own socket means serve again.
The same tick rescans the SGX device files, so health changes reach ListAndWatch within 1 s.
With a ready file, the file exists exactly while the running kubelet has the plugin registered:
the chart's readiness probe looks for it, so a plugin that cannot register shows as a pod that
is not Ready, and the SGXPlugin's sgxReplicaAlert names its node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

import grpc

from enclave_operator.services.deviceplugin.capacity import resolve_capacity
from enclave_operator.services.deviceplugin.devices import API_VERSION, RESOURCE_NAME
from enclave_operator.services.deviceplugin.servicer import OPTIONS, SGXDevicePlugin
from enclave_operator.services.deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

log = logging.getLogger(__name__)

KUBELET_SOCKET = "kubelet.sock"
ENDPOINT = "enclave-sgx.sock"
"""The plugin's socket, named in the registration; the kubelet dials it in the same directory."""

RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
"""A kubelet that is not answering yet; any other failure is the kubelet refusing."""


class PluginError(Exception):
    """Unrecoverable: the command prints it as one error line and exits non-zero."""


@dataclass(frozen=True)
class Config:
    plugin_dir: Path
    dev_dir: Path
    capacity: int
    poll_interval: float = 1.0
    register_timeout: float = 30.0
    """Longer than the kubelet's own 10 s for dialing back the plugin during Register."""
    ready_file: Path | None = None

    def check(self) -> None:
        """Fail at start on what no retry can fix."""
        if not self.plugin_dir.is_dir():
            raise PluginError(
                f"the kubelet's device plugin directory {self.plugin_dir} is not a directory"
                " (mount the host's /var/lib/kubelet/device-plugins or pass --device-plugin-dir)"
            )
        if not self.dev_dir.is_dir():
            raise PluginError(f"the device directory {self.dev_dir} is not a directory (--dev-dir)")
        if self.capacity < 1:
            raise PluginError(f"capacity {self.capacity}: at least one device is needed")
        if self.ready_file is not None and not self.ready_file.parent.is_dir():
            raise PluginError(
                f"the ready file's directory {self.ready_file.parent} is not a directory"
                " (--ready-file)"
            )


Identity = tuple[int, int, int] | None


def identity(path: Path) -> Identity:
    """Device, inode and change time: a recreated file differs even if its inode is reused."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_ctime_ns)


class Plugin:
    def __init__(self, config: Config, servicer: SGXDevicePlugin) -> None:
        self.config = config
        self.servicer = servicer
        self.socket = config.plugin_dir / ENDPOINT
        self.kubelet_socket = config.plugin_dir / KUBELET_SOCKET
        self._server: grpc.aio.Server | None = None
        self._serving: Identity = None
        self._registered: Identity = None
        self._reported: Identity | str = "never"
        self._ready = False

    async def run(self, stop: asyncio.Event) -> None:
        """Serve, register and follow the kubelet until ``stop`` is set."""
        if self.config.ready_file is not None:  # left by a container that crashed before
            self.config.ready_file.unlink(missing_ok=True)
        await self.serve()
        try:
            while not stop.is_set():
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.poll_interval)
        finally:
            await self.close()

    async def tick(self) -> None:
        """One look at the kubelet, the own socket and the device files."""
        kubelet = identity(self.kubelet_socket)  # first: a new kubelet has already cleaned up
        if identity(self.socket) != self._serving:
            log.warning(
                "plugin socket %s was removed (a restarting kubelet removes them); serving again",
                self.socket,
            )
            await self.serve()
            self._registered = None
        await self.servicer.rescan()
        if kubelet is None:
            if self._reported is not None:
                log.warning("waiting for the kubelet: no %s", self.kubelet_socket)
                self._reported = None
            self._registered = None
        elif kubelet != self._registered:
            if self._registered is not None:
                log.info("the kubelet restarted (%s recreated); registering again", KUBELET_SOCKET)
            await self.register(kubelet)
        self._mark_ready(kubelet is not None and self._registered == kubelet)

    async def serve(self) -> None:
        """(Re)start the DevicePlugin service on a fresh socket file."""
        await self._stop_server()
        self._remove_stale_socket()
        server = grpc.aio.server()
        api_pb2_grpc.add_DevicePluginServicer_to_server(self.servicer, server)
        try:
            server.add_insecure_port(f"unix:{self.socket}")
        except RuntimeError as e:
            raise PluginError(f"cannot listen on {self.socket}: {e}") from None
        await server.start()
        self._server = server
        self._serving = identity(self.socket)
        log.info("serving the device plugin API %s on %s", API_VERSION, self.socket)

    async def register(self, kubelet: Identity) -> None:
        """Registration.Register; the kubelet dials back and asks for the options meanwhile."""
        request = api_pb2.RegisterRequest(
            version=API_VERSION, endpoint=ENDPOINT, resource_name=RESOURCE_NAME, options=OPTIONS
        )
        async with grpc.aio.insecure_channel(f"unix:{self.kubelet_socket}") as channel:
            stub = api_pb2_grpc.RegistrationStub(channel)
            try:
                await stub.Register(request, timeout=self.config.register_timeout)
            except grpc.aio.AioRpcError as e:
                if e.code() not in RETRYABLE:
                    raise PluginError(
                        f"the kubelet refused to register {RESOURCE_NAME}:"
                        f" {e.details() or e.code().name}"
                    ) from None
                if self._reported != kubelet:
                    log.warning(
                        "the kubelet is not answering on %s (%s); retrying every %gs",
                        self.kubelet_socket,
                        e.code().name,
                        self.config.poll_interval,
                    )
                    self._reported = kubelet
                return
        self._registered = self._reported = kubelet
        log.info(
            "registered %s with the kubelet: %d devices, %s",
            RESOURCE_NAME,
            len(self.servicer.ids),
            self.servicer.describe(),
        )

    def _mark_ready(self, ready: bool) -> None:
        """The ready file follows the registration (written only when that changes)."""
        path = self.config.ready_file
        if path is None or ready == self._ready:
            return
        if ready:
            path.write_text(f"{RESOURCE_NAME} registered\n")
        else:
            path.unlink(missing_ok=True)
        self._ready = ready

    async def close(self) -> None:
        """Stop serving and remove the socket file if it is still the plugin's."""
        self._mark_ready(False)
        await self._stop_server()
        if self._serving is not None and identity(self.socket) == self._serving:
            with contextlib.suppress(FileNotFoundError):
                self.socket.unlink()
        self._serving = None

    async def _stop_server(self) -> None:
        if self._server is not None:
            await self.servicer.end_streams()
            await self._server.stop(grace=1.0)
            self._server = None

    def _remove_stale_socket(self) -> None:
        try:
            mode = os.lstat(self.socket).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise PluginError(f"{self.socket} exists and is not a socket; remove it")
        self.socket.unlink()


async def _main(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    plugin = Plugin(config, SGXDevicePlugin(config.capacity, config.dev_dir))
    log.info(
        "SGX device plugin: %s, %d devices, %s",
        RESOURCE_NAME,
        config.capacity,
        plugin.servicer.describe(),
    )
    await plugin.run(stop)
    log.info("stopped")


def run(
    capacity_flag: int,
    node_name: str | None,
    plugin_dir: Path,
    dev_dir: Path,
    ready_file: Path | None = None,
) -> None:
    """The whole service; PluginError for what the node or the kubelet rejects."""
    Config(plugin_dir, dev_dir, 1).check()  # the directories first: no API call for nothing
    capacity = resolve_capacity(capacity_flag, node_name)
    config = Config(plugin_dir.absolute(), dev_dir.absolute(), capacity, ready_file=ready_file)
    config.check()
    asyncio.run(_main(config))
