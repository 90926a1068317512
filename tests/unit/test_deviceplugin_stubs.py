"""The committed device plugin stubs: the names the kubelet calls, and up to date with upstream."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from enclave_operator.services.deviceplugin.v1beta1 import api_pb2

ROOT = Path(__file__).resolve().parents[2]


def test_services_and_methods_have_the_kubelets_names():
    services = {
        name: [m.name for m in service.methods]
        for name, service in api_pb2.DESCRIPTOR.services_by_name.items()
    }
    assert api_pb2.DESCRIPTOR.package == "v1beta1"  # gRPC paths are /v1beta1.<Service>/<Method>
    assert services == {
        "Registration": ["Register"],
        "DevicePlugin": [
            "GetDevicePluginOptions",
            "ListAndWatch",
            "GetPreferredAllocation",
            "Allocate",
            "PreStartContainer",
        ],
    }


@pytest.mark.skipif(shutil.which("go") is None, reason="needs Go for `go mod download`")
def test_stubs_are_generated_from_the_pinned_kubelet_api():
    proc = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen-deviceplugin-api.sh"), "--check"],
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
