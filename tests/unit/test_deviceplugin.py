"""The device plugin's pieces in-process: device files, capacity, the DevicePlugin service."""

from __future__ import annotations

import asyncio
import http.server
import json
import logging
import shutil
import socket
import tempfile
import threading
from pathlib import Path

import grpc
import pytest
from kubernetes.client import ApiException

from enclave_operator.services.deviceplugin import capacity as capacity_mod
from enclave_operator.services.deviceplugin.capacity import FALLBACK_PODS, resolve_capacity
from enclave_operator.services.deviceplugin.devices import (
    DeviceFiles,
    container_allocation,
    device_ids,
    preferred,
    scan,
)
from enclave_operator.services.deviceplugin.plugin import Config, Plugin, PluginError, identity
from enclave_operator.services.deviceplugin.servicer import SGXDevicePlugin
from enclave_operator.services.deviceplugin.v1beta1 import api_pb2
from tests.unit.deviceplugin_kubelet import FakeKubelet

# --- device files -------------------------------------------------------------------------


def test_scan_finds_only_sgx_device_files(tmp_path):
    for name in ("sgx_enclave", "sgx_provision", "null", "sgx"):
        (tmp_path / name).write_text("")
    assert scan(tmp_path) == {"sgx_enclave", "sgx_provision"}
    assert scan(tmp_path / "nowhere") == frozenset()


def test_device_files_health_follows_every_file_ever_seen():
    files = DeviceFiles()
    assert not files.update(frozenset())
    assert files.simulation
    assert files.healthy
    assert not files.update(frozenset({"sgx_enclave"}))  # appeared: hardware, still healthy
    assert not files.simulation
    assert files.healthy
    assert not files.update(frozenset({"sgx_enclave", "sgx_provision"}))
    assert files.update(frozenset({"sgx_enclave"}))  # provision vanished: health changed
    assert not files.healthy
    assert files.missing == ["/dev/sgx_provision"]
    assert not files.update(frozenset())  # still unhealthy: no change to report
    assert files.missing == ["/dev/sgx_enclave", "/dev/sgx_provision"]
    assert files.update(frozenset({"sgx_enclave", "sgx_provision"}))
    assert files.healthy
    assert files.missing == []


def test_allocation_in_hardware_gives_device_specs_and_hw_mode():
    files = DeviceFiles()
    files.update(frozenset({"sgx_provision", "sgx_enclave"}))
    response = container_allocation(files)
    assert dict(response.envs) == {"SGX_MODE": "HW", "SCONE_MODE": "HW"}
    assert [(d.host_path, d.container_path, d.permissions) for d in response.devices] == [
        ("/dev/sgx_enclave", "/dev/sgx_enclave", "rw"),
        ("/dev/sgx_provision", "/dev/sgx_provision", "rw"),
    ]
    assert list(response.mounts) == []


def test_allocation_in_simulation_says_so():
    response = container_allocation(DeviceFiles())
    assert dict(response.envs) == {"SGX_MODE": "SIM", "SCONE_MODE": "SIM"}
    assert list(response.devices) == []


def test_device_ids_are_stable_and_short():
    assert device_ids(3) == ["sgx-0", "sgx-1", "sgx-2"]
    assert all(len(i) <= 63 for i in device_ids(10000))
    assert len(set(device_ids(10000))) == 10000


@pytest.mark.parametrize(
    ("available", "must", "size", "expected"),
    [
        (["sgx-10", "sgx-2", "sgx-1"], [], 2, ["sgx-1", "sgx-2"]),
        (["sgx-0", "sgx-1", "sgx-5"], ["sgx-5"], 2, ["sgx-5", "sgx-0"]),
        (["sgx-0"], ["sgx-3", "sgx-4"], 1, ["sgx-3", "sgx-4"]),
        ([], [], 0, []),
    ],
)
def test_preferred_allocation(available, must, size, expected):
    assert preferred(available, must, size) == expected


# --- capacity -----------------------------------------------------------------------------


def test_capacity_flag_wins_without_reading_the_node():
    def read(_: str) -> str:
        raise AssertionError("the Node must not be read")

    assert resolve_capacity(7, "node-1", read) == 7


def test_capacity_from_the_nodes_allocatable_pods(caplog):
    caplog.set_level(logging.INFO)
    assert resolve_capacity(0, "node-1", lambda name: {"node-1": "250"}[name]) == 250
    assert "250 devices, the allocatable pods of node node-1" in caplog.text


@pytest.mark.parametrize(
    ("node", "read", "log"),
    [
        (None, None, "no node name"),
        ("", None, "no node name"),
        ("n", lambda _: (_ for _ in ()).throw(ApiException(403, "Forbidden")), "(403 Forbidden)"),
        ("n", lambda _: (_ for _ in ()).throw(OSError("no route")), "(no route)"),
        ("n", lambda _: None, "has allocatable pods None"),
        ("n", lambda _: "0", "has allocatable pods '0'"),
        ("n", lambda _: "1.5", "has allocatable pods '1.5'"),
        ("n", lambda _: "lots", "has allocatable pods 'lots'"),
    ],
)
def test_capacity_falls_back_to_110_and_says_why(caplog, node, read, log):
    assert resolve_capacity(0, node, read) == FALLBACK_PODS == 110
    assert log in caplog.text
    assert "advertising 110" in caplog.text


def test_capacity_is_capped_at_the_crd_maximum():
    assert resolve_capacity(0, "n", lambda _: "20k") == 10000


def test_capacity_reader_outside_a_cluster_falls_back(monkeypatch, tmp_path, caplog):
    """The real reader: no in-cluster config and no kubeconfig is a fallback, not a crash."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert capacity_mod.resolve_capacity(0, "node-1") == 110
    assert "cannot read the allocatable pods of node node-1" in caplog.text


class _NodeAPI(http.server.BaseHTTPRequestHandler):
    """GET /api/v1/nodes/node-1 of an API server; any other node is forbidden."""

    def do_GET(self):
        if self.path.startswith("/api/v1/nodes/node-1"):
            body = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "node-1"}}
            body["status"] = {"allocatable": {"pods": "42", "cpu": "2"}}
            code = 200
        else:
            body = {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "no"}
            code = 403
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture
def node_api(monkeypatch, tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NodeAPI)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}
                ],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    yield
    server.shutdown()
    server.server_close()


def test_capacity_reader_reads_the_node_from_the_api(node_api, caplog):
    caplog.set_level(logging.INFO)
    assert capacity_mod.resolve_capacity(0, "node-1") == 42
    assert resolve_capacity(0, "node-2") == 110
    assert "cannot read the allocatable pods of node node-2 (403 Forbidden)" in caplog.text


# --- the DevicePlugin service -------------------------------------------------------------


class Aborted(Exception):
    pass


class FakeContext:
    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)


def run(coro):
    return asyncio.run(coro)


def allocate_request(*ids: str) -> api_pb2.AllocateRequest:
    return api_pb2.AllocateRequest(
        container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=list(ids))]
    )


def test_options_advertise_preferred_allocation_and_no_prestart(tmp_path):
    async def go():
        plugin = SGXDevicePlugin(1, tmp_path)
        return await plugin.GetDevicePluginOptions(api_pb2.Empty(), FakeContext())

    options = run(go())
    assert options.get_preferred_allocation_available
    assert not options.pre_start_required


def test_list_and_watch_sends_the_list_and_every_change_of_health(tmp_path):
    (tmp_path / "sgx_enclave").write_text("")

    async def go():
        plugin = SGXDevicePlugin(2, tmp_path)
        stream = plugin.ListAndWatch(api_pb2.Empty(), FakeContext())
        first = await anext(stream)
        (tmp_path / "sgx_enclave").unlink()
        await plugin.rescan()
        second = await anext(stream)
        await plugin.rescan()  # nothing changed: no message
        (tmp_path / "sgx_enclave").write_text("")
        await plugin.rescan()
        third = await anext(stream)
        await plugin.end_streams()
        with pytest.raises(StopAsyncIteration):
            await anext(stream)
        return first, second, third

    lists = [[(d.ID, d.health) for d in r.devices] for r in run(go())]
    assert lists == [
        [("sgx-0", "Healthy"), ("sgx-1", "Healthy")],
        [("sgx-0", "Unhealthy"), ("sgx-1", "Unhealthy")],
        [("sgx-0", "Healthy"), ("sgx-1", "Healthy")],
    ]


def test_allocate_one_response_per_container(tmp_path):
    async def go():
        plugin = SGXDevicePlugin(3, tmp_path)
        request = api_pb2.AllocateRequest(
            container_requests=[
                api_pb2.ContainerAllocateRequest(devices_ids=["sgx-0"]),
                api_pb2.ContainerAllocateRequest(devices_ids=["sgx-1", "sgx-2"]),
            ]
        )
        return await plugin.Allocate(request, FakeContext())

    response = run(go())
    assert [dict(c.envs)["SGX_MODE"] for c in response.container_responses] == ["SIM", "SIM"]


def test_allocate_sees_device_files_that_appeared_after_start(tmp_path):
    async def go():
        plugin = SGXDevicePlugin(1, tmp_path)
        (tmp_path / "sgx_enclave").write_text("")
        return await plugin.Allocate(allocate_request("sgx-0"), FakeContext())

    (container,) = run(go()).container_responses
    assert dict(container.envs)["SGX_MODE"] == "HW"
    assert [d.host_path for d in container.devices] == ["/dev/sgx_enclave"]


@pytest.mark.parametrize(
    ("files_after_start", "ids", "code", "detail"),
    [
        (["sgx_enclave"], ["sgx-1"], grpc.StatusCode.INVALID_ARGUMENT, "unknown devices sgx-1"),
        ([], ["sgx-0"], grpc.StatusCode.FAILED_PRECONDITION, "missing on this node: /dev/sgx_enc"),
    ],
)
def test_allocate_refusals(tmp_path, files_after_start, ids, code, detail):
    (tmp_path / "sgx_enclave").write_text("")

    async def go():
        plugin = SGXDevicePlugin(1, tmp_path)
        for name in ("sgx_enclave",):
            if name not in files_after_start:
                (tmp_path / name).unlink()
        await plugin.Allocate(allocate_request(*ids), FakeContext())

    with pytest.raises(Aborted) as e:
        run(go())
    assert e.value.args[0] == code
    assert detail in e.value.args[1]


def test_prestart_container_answers(tmp_path):
    async def go():
        plugin = SGXDevicePlugin(1, tmp_path)
        request = api_pb2.PreStartContainerRequest(devices_ids=["sgx-0"])
        return await plugin.PreStartContainer(request, FakeContext())

    assert run(go()) == api_pb2.PreStartContainerResponse()


# --- the plugin's own socket and configuration --------------------------------------------


def test_identity_changes_when_a_socket_is_recreated(tmp_path):
    path = tmp_path / "kubelet.sock"
    assert identity(path) is None
    for _ in range(2):
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()
        first = identity(path)
        assert first is not None
        assert first == identity(path)
        path.unlink()
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()
    assert identity(path) != first


@pytest.mark.parametrize("broken", ["plugin_dir", "dev_dir"])
def test_config_check_names_the_broken_directory(tmp_path, broken):
    dirs = {"plugin_dir": tmp_path, "dev_dir": tmp_path, broken: tmp_path / "missing"}
    with pytest.raises(PluginError, match="missing"):
        Config(dirs["plugin_dir"], dirs["dev_dir"], 1).check()


def test_config_check_names_a_ready_file_without_its_directory(tmp_path):
    config = Config(tmp_path, tmp_path, 1, ready_file=tmp_path / "missing" / "registered")
    with pytest.raises(PluginError, match=r"missing is not a directory \(--ready-file\)"):
        config.check()


def test_serve_refuses_to_remove_a_file_that_is_not_a_socket(tmp_path):
    (tmp_path / "enclave-sgx.sock").write_text("mine")

    async def go():
        plugin = Plugin(Config(tmp_path, tmp_path, 1), SGXDevicePlugin(1, tmp_path))
        await plugin.serve()

    with pytest.raises(PluginError, match="is not a socket"):
        run(go())
    assert (tmp_path / "enclave-sgx.sock").read_text() == "mine"


def test_serve_replaces_a_stale_socket_and_close_removes_it(tmp_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "enclave-sgx.sock"))
    stale.close()
    before = identity(tmp_path / "enclave-sgx.sock")

    async def go():
        plugin = Plugin(Config(tmp_path, tmp_path, 1), SGXDevicePlugin(1, tmp_path))
        await plugin.serve()
        serving = identity(tmp_path / "enclave-sgx.sock")
        await plugin.close()
        return serving

    serving = run(go())
    assert serving is not None
    assert serving != before
    assert not (tmp_path / "enclave-sgx.sock").exists()


def test_tick_waits_without_a_kubelet_and_keeps_serving(tmp_path, caplog):
    caplog.set_level(logging.INFO)

    async def go():
        plugin = Plugin(Config(tmp_path, tmp_path, 1), SGXDevicePlugin(1, tmp_path))
        await plugin.serve()
        await plugin.tick()
        await plugin.tick()
        (tmp_path / "enclave-sgx.sock").unlink()  # as a restarting kubelet does
        await plugin.tick()
        alive = (tmp_path / "enclave-sgx.sock").exists()
        await plugin.close()
        return alive

    assert run(go())
    assert caplog.text.count("waiting for the kubelet") == 1
    assert "was removed (a restarting kubelet removes them); serving again" in caplog.text


@pytest.fixture
def short_dir():
    path = Path(tempfile.mkdtemp(prefix="dpu-", dir="/tmp"))  # unix socket paths are short
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_tick_registers_once_per_kubelet_socket(short_dir):
    """A new kubelet.sock alone (the plugin's socket kept) is enough to register again."""
    kubelet = FakeKubelet(short_dir)
    kubelet.start()

    async def go():
        plugin = Plugin(Config(short_dir, short_dir, 2), SGXDevicePlugin(2, short_dir))
        await plugin.serve()
        try:
            await plugin.tick()
            await plugin.tick()  # same kubelet: no second registration
            first = kubelet.registrations.qsize()
            kubelet.stop()
            kubelet.start(cleanup=False)
            await plugin.tick()
            return first, kubelet.registrations.qsize()
        finally:
            await plugin.close()

    try:
        assert run(go()) == (1, 2)
    finally:
        kubelet.stop()


def test_tick_turns_a_refusal_into_a_plugin_error(short_dir):
    kubelet = FakeKubelet(short_dir, refuse="device plugin version v1beta1 is not supported")
    kubelet.start()

    async def go():
        plugin = Plugin(Config(short_dir, short_dir, 1), SGXDevicePlugin(1, short_dir))
        await plugin.serve()
        try:
            await plugin.tick()
        finally:
            await plugin.close()

    try:
        with pytest.raises(PluginError) as e:
            run(go())
    finally:
        kubelet.stop()
    assert str(e.value) == (
        "the kubelet refused to register sgx.k8s.io/sgx:"
        " device plugin version v1beta1 is not supported"
    )


def test_the_ready_file_exists_exactly_while_the_running_kubelet_has_the_plugin(short_dir):
    ready: Path = short_dir / "registered"
    kubelet = FakeKubelet(short_dir)

    async def go() -> list[bool]:
        config = Config(short_dir, short_dir, 1, ready_file=ready)
        plugin = Plugin(config, SGXDevicePlugin(1, short_dir))
        await plugin.serve()
        seen = []
        try:
            await plugin.tick()  # no kubelet yet
            seen.append(ready.exists())
            kubelet.start()
            await plugin.tick()  # registered
            seen.append(ready.exists())
            kubelet.stop()
            kubelet.socket.unlink()  # the kubelet is gone
            await plugin.tick()
            seen.append(ready.exists())
            kubelet.start(cleanup=False)  # a new kubelet: registered again
            await plugin.tick()
            seen.append(ready.exists())
        finally:
            await plugin.close()
        seen.append(ready.exists())  # a stopped plugin is not ready
        return seen

    try:
        assert run(go()) == [False, True, False, True, False]
    finally:
        kubelet.stop()


def test_the_not_answering_kubelet_leaves_the_plugin_not_ready(short_dir):
    ready: Path = short_dir / "registered"
    kubelet = FakeKubelet(short_dir)
    kubelet.stop()  # a dead kubelet's socket file: registration is retried, never done

    async def go() -> bool:
        plugin = Plugin(Config(short_dir, short_dir, 1, ready_file=ready, register_timeout=1),
                        SGXDevicePlugin(1, short_dir))  # fmt: skip
        await plugin.serve()
        try:
            await plugin.tick()
            return ready.exists()
        finally:
            await plugin.close()

    assert run(go()) is False


def test_a_ready_file_left_by_an_earlier_container_is_removed_at_start(short_dir):
    ready: Path = short_dir / "registered"
    ready.write_text("left over")

    async def go() -> bool:
        plugin = Plugin(
            Config(short_dir, short_dir, 1, ready_file=ready), SGXDevicePlugin(1, short_dir)
        )
        stop = asyncio.Event()
        stop.set()  # one pass of run(): clean up, serve, stop
        await plugin.run(stop)
        return ready.exists()

    assert run(go()) is False
