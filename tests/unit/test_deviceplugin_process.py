"""`enclavectl service sgx-plugin` as a process against a stand-in kubelet on a temp directory.

Nothing here sleeps: every wait is for an event (a registration, a ListAndWatch update, an
exit) with a generous upper bound, except the one bound the issue sets (re-registration
within 5 s of a kubelet restart).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from enclave_operator.services.deviceplugin.v1beta1 import api_pb2
from tests.unit.deviceplugin_kubelet import WAIT, FakeKubelet, Registration


class PluginProcess:
    def __init__(self, plugin_dir: Path, dev_dir: Path, log: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("NODE_NAME", "KUBECONFIG")}
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "enclave_operator.cli",
                    "service",
                    "sgx-plugin",
                    f"--device-plugin-dir={plugin_dir}",
                    f"--dev-dir={dev_dir}",
                    *args,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_for_log(self, text: str) -> None:
        """Until the log shows ``text`` (or the process ended, or WAIT passed)."""
        deadline = time.monotonic() + WAIT
        while text not in self.output():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} in:\n{self.output()}"
            time.sleep(0.05)

    def wait_exit(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def dirs() -> Iterator[tuple[Path, Path]]:
    # Short: a unix socket path must fit in 108 bytes.
    root = Path(tempfile.mkdtemp(prefix="dp-", dir="/tmp"))
    (root / "dp").mkdir()
    (root / "dev").mkdir()
    yield root / "dp", root / "dev"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def kubelet(dirs) -> Iterator[FakeKubelet]:
    k = FakeKubelet(dirs[0])
    k.start()
    yield k
    k.stop()


@pytest.fixture
def start_plugin(dirs, tmp_path) -> Iterator[Callable[..., PluginProcess]]:
    started: list[PluginProcess] = []

    def start(*args: str) -> PluginProcess:
        p = PluginProcess(dirs[0], dirs[1], tmp_path / f"plugin-{len(started)}.log", *args)
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
        print(f"--- plugin log ---\n{p.output()}")


def allocate(reg: Registration, *ids: str) -> api_pb2.ContainerAllocateResponse:
    request = api_pb2.AllocateRequest(
        container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=list(ids))]
    )
    response = reg.stub.Allocate(request, timeout=10)
    assert len(response.container_responses) == 1
    return response.container_responses[0]


def specs(response: api_pb2.ContainerAllocateResponse) -> list[tuple[str, str, str]]:
    return [(d.host_path, d.container_path, d.permissions) for d in response.devices]


def make_devices(dev: Path, *names: str) -> None:
    for name in names:
        (dev / name).write_text("")


def test_registers_and_lists_its_devices(kubelet, start_plugin):
    start_plugin("--capacity-sgx-pods=3")
    reg = kubelet.next_registration()
    assert reg.request.version == "v1beta1"
    assert reg.request.resource_name == "sgx.k8s.io/sgx"
    assert reg.request.endpoint == "enclave-sgx.sock"  # a name in the kubelet's directory
    assert (kubelet.dir / reg.request.endpoint).exists()
    assert reg.options == api_pb2.DevicePluginOptions(
        pre_start_required=False, get_preferred_allocation_available=True
    )
    assert reg.request.options == reg.options
    assert reg.next_devices() == [("sgx-0", "Healthy"), ("sgx-1", "Healthy"), ("sgx-2", "Healthy")]


def test_capacity_defaults_to_110_without_a_node(kubelet, start_plugin):
    plugin = start_plugin()
    devices = kubelet.next_registration().next_devices()
    assert len(devices) == 110
    assert {h for _, h in devices} == {"Healthy"}
    assert "no node name (set NODE_NAME from spec.nodeName); advertising 110" in plugin.output()


def test_allocate_in_simulation(kubelet, start_plugin):
    start_plugin("--capacity-sgx-pods=2")
    reg = kubelet.next_registration()
    response = allocate(reg, "sgx-1")
    assert dict(response.envs) == {"SGX_MODE": "SIM", "SCONE_MODE": "SIM"}
    assert specs(response) == []
    preferred = reg.stub.GetPreferredAllocation(
        api_pb2.PreferredAllocationRequest(
            container_requests=[
                api_pb2.ContainerPreferredAllocationRequest(
                    available_deviceIDs=["sgx-1", "sgx-0"], allocation_size=1
                )
            ]
        ),
        timeout=10,
    )
    assert list(preferred.container_responses[0].deviceIDs) == ["sgx-0"]
    reg.stub.PreStartContainer(api_pb2.PreStartContainerRequest(devices_ids=["sgx-0"]), timeout=10)


def test_allocate_with_device_files(dirs, kubelet, start_plugin):
    make_devices(dirs[1], "sgx_enclave", "sgx_provision")
    start_plugin("--capacity-sgx-pods=2")
    response = allocate(kubelet.next_registration(), "sgx-0")
    assert dict(response.envs) == {"SGX_MODE": "HW", "SCONE_MODE": "HW"}
    assert specs(response) == [
        ("/dev/sgx_enclave", "/dev/sgx_enclave", "rw"),
        ("/dev/sgx_provision", "/dev/sgx_provision", "rw"),
    ]


def test_allocate_refuses_unknown_devices(kubelet, start_plugin):
    start_plugin("--capacity-sgx-pods=2")
    with pytest.raises(grpc.RpcError) as e:
        allocate(kubelet.next_registration(), "sgx-7")
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "sgx-7" in e.value.details()


def test_devices_unhealthy_while_device_files_are_gone(dirs, kubelet, start_plugin):
    make_devices(dirs[1], "isgx")
    start_plugin("--capacity-sgx-pods=2")
    reg = kubelet.next_registration()
    assert reg.next_devices() == [("sgx-0", "Healthy"), ("sgx-1", "Healthy")]
    (dirs[1] / "isgx").unlink()
    assert reg.next_devices() == [("sgx-0", "Unhealthy"), ("sgx-1", "Unhealthy")]
    with pytest.raises(grpc.RpcError) as e:
        allocate(reg, "sgx-0")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "/dev/isgx" in e.value.details()
    make_devices(dirs[1], "isgx")
    assert reg.next_devices() == [("sgx-0", "Healthy"), ("sgx-1", "Healthy")]
    assert specs(allocate(reg, "sgx-0")) == [("/dev/isgx", "/dev/isgx", "rw")]


def test_registers_again_within_5s_of_a_kubelet_restart(kubelet, start_plugin):
    plugin = start_plugin("--capacity-sgx-pods=1")
    first = kubelet.next_registration()
    assert first.next_devices() == [("sgx-0", "Healthy")]
    started = time.monotonic()
    kubelet.restart()  # deletes the plugin's socket too, as the kubelet does
    second = kubelet.next_registration()
    assert time.monotonic() - started < 5
    assert second.next_devices() == [("sgx-0", "Healthy")]
    assert dict(allocate(second, "sgx-0").envs)["SGX_MODE"] == "SIM"
    assert "registering again" in plugin.output() or "serving again" in plugin.output()
    assert kubelet.registrations.empty()  # exactly one registration per kubelet start


def test_waits_for_a_kubelet_that_is_not_there_yet(dirs, start_plugin):
    kubelet = FakeKubelet(dirs[0])
    plugin = start_plugin("--capacity-sgx-pods=1")
    plugin.wait_for_log("waiting for the kubelet: no ")
    try:
        kubelet.start()  # removes the plugin's socket first, as the kubelet does
        reg = kubelet.next_registration()
        assert reg.next_devices() == [("sgx-0", "Healthy")]
    finally:
        kubelet.stop()
    assert plugin.proc.poll() is None


def test_retries_a_kubelet_socket_nobody_answers(dirs, start_plugin):
    kubelet = FakeKubelet(dirs[0])
    kubelet.stop()  # a dead kubelet's socket file stays behind
    plugin = start_plugin("--capacity-sgx-pods=1")
    plugin.wait_for_log("the kubelet is not answering on ")
    try:
        kubelet.start()
        assert kubelet.next_registration().next_devices() == [("sgx-0", "Healthy")]
    finally:
        kubelet.stop()
    assert plugin.output().count("not answering") == 1  # said once, not once a second


def test_a_refused_registration_is_one_error_line_and_exit_1(dirs, start_plugin):
    kubelet = FakeKubelet(dirs[0], refuse="resource sgx.k8s.io/sgx is taken")
    kubelet.start()
    try:
        plugin = start_plugin("--capacity-sgx-pods=1")
        assert plugin.wait_exit() == 1
    finally:
        kubelet.stop()
    out = plugin.output()
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: the kubelet refused to register sgx.k8s.io/sgx: resource sgx.k8s.io/sgx is taken"
    ]
    assert "Traceback" not in out
    assert not (dirs[0] / "enclave-sgx.sock").exists()


@pytest.mark.parametrize(
    ("setup", "args", "code", "message"),
    [
        ("no-plugin-dir", [], 1, "device plugin directory"),
        ("no-dev-dir", [], 1, "the device directory"),
        ("file-at-endpoint", [], 1, "enclave-sgx.sock exists and is not a socket"),
        ("", ["--capacity-sgx-pods=10001"], 2, "--capacity-sgx-pods"),
        ("", ["--capacity-sgx-pods=-1"], 2, "--capacity-sgx-pods"),
    ],
)
def test_configuration_errors(dirs, start_plugin, setup, args, code, message):
    plugin_dir, dev_dir = dirs
    if setup == "no-plugin-dir":
        plugin_dir.rmdir()
    elif setup == "no-dev-dir":
        dev_dir.rmdir()
    elif setup == "file-at-endpoint":
        (plugin_dir / "enclave-sgx.sock").write_text("not a socket")
    plugin = start_plugin("--capacity-sgx-pods=1", *args)
    assert plugin.wait_exit() == code
    lines = plugin.output().splitlines()
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, lines
    assert message in errors[0]
    assert "Traceback" not in plugin.output()


def test_sigterm_stops_cleanly_and_removes_the_socket(dirs, kubelet, start_plugin):
    plugin = start_plugin("--capacity-sgx-pods=1")
    kubelet.next_registration()
    assert (dirs[0] / "enclave-sgx.sock").exists()
    assert plugin.stop() == 0
    assert not (dirs[0] / "enclave-sgx.sock").exists()
    assert (dirs[0] / "kubelet.sock").exists()


def test_the_ready_file_follows_the_registration_and_goes_at_sigterm(dirs, kubelet, start_plugin):
    ready = dirs[0].parent / "registered"
    plugin = start_plugin("--capacity-sgx-pods=1", f"--ready-file={ready}")
    kubelet.next_registration()
    deadline = time.monotonic() + WAIT  # written on the tick that registered
    while not ready.exists():
        assert time.monotonic() < deadline, plugin.output()
        time.sleep(0.05)
    assert plugin.stop() == 0
    assert not ready.exists()
