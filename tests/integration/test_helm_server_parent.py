"""The helm server beside an operator that is pid 1, as in the operator's container: it serves,
and it still goes when its parent goes. No cluster: a request it cannot reach the API server
for still gets an answer, which is enough to know it serves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from enclave_operator.devcluster.binaries import toolset

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root and unshare(1)"
)

AS_PID_1 = """
import json, os, subprocess, sys
assert os.getpid() == 1
server = subprocess.Popen(
    [sys.argv[1], f"--parent={os.getpid()}"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    env={"KUBECONFIG": sys.argv[2], "PATH": "/usr/bin:/bin"},
)
request = {"id": 7, "verb": "uninstall", "release": "r", "namespace": "ns"}
server.stdin.write(json.dumps(request).encode() + b"\\n")
server.stdin.flush()
answer = server.stdout.readline()  # stdin stays open: its end would stop the server
out, err = server.communicate(timeout=60)
print(json.dumps({"code": server.returncode, "out": answer.decode(), "err": err.decode()}))
"""


NOWHERE = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def test_it_serves_when_the_operator_is_pid_1(tmp_path: Path) -> None:
    """The server used to take a parent of pid 1 for a dead operator and exit at once."""
    binary = str(toolset().path("helm-server"))
    kubeconfig = tmp_path / "kubeconfig"  # loads, and reaches nothing: the answer is an error
    kubeconfig.write_text(NOWHERE)
    script = textwrap.dedent(AS_PID_1)
    proc = subprocess.run(
        ["unshare", "--pid", "--fork", sys.executable, "-c", script, binary, str(kubeconfig)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, result["err"]
    answer = json.loads(result["out"].strip().splitlines()[0])
    assert answer["id"] == 7
    assert not answer["ok"]


def test_it_exits_when_its_parent_is_not_the_operator() -> None:
    binary = str(toolset().path("helm-server"))
    proc = subprocess.run(
        [binary, "--parent=1"], input="", capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1
    assert "parent 1 is gone" in proc.stderr
