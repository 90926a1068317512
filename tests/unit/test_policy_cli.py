"""`enclavectl policy`: every refusal is one `error:` line and exit 1, nothing half-written."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from enclave_operator.devcluster.processes import free_port

MEASUREMENT = "cd" * 32
POLICY = f"""name: demo
services:
  - name: app
    measurement: {MEASUREMENT}
    command: [python3, app.py]
    secrets: {{TOKEN: token}}
secrets:
  - name: token
    value: t0ken
"""


def enclavectl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "enclave_operator.cli", "policy", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def refused(proc: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    for phrase in phrases:
        assert phrase in lines[0]


@pytest.fixture
def files(tmp_path: Path):
    key = tmp_path / "key"
    assert enclavectl("keygen", str(key)).returncode == 0
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return tmp_path, key, policy


def test_keygen_writes_a_private_key_only_its_owner_reads(files):
    _, key, _ = files
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.with_name("key.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_keygen_never_overwrites_a_key(files):
    _, key, _ = files
    before = key.read_bytes()
    refused(enclavectl("keygen", str(key)), "exists")
    assert key.read_bytes() == before


def test_sign_verify_round_trip_with_two_signers(files):
    tmp, key, policy = files
    second = tmp / "second"
    enclavectl("keygen", str(second))
    out = enclavectl("sign", "--key", str(key), "--key", str(second), "-n", "apps", str(policy))
    assert out.returncode == 0, out.stderr
    manifest = yaml.safe_load(out.stdout)
    assert manifest["metadata"] == {"name": "demo", "namespace": "apps"}
    assert manifest["spec"]["policy"] == POLICY, "the exact bytes that were signed"
    assert len(manifest["spec"]["signatures"]) == 2
    (tmp / "m.yaml").write_text(out.stdout)
    verified = enclavectl("verify", str(tmp / "m.yaml"))
    assert verified.returncode == 0
    assert verified.stdout.count("ok: signed by sha256:") == 2


@pytest.mark.parametrize(
    ("edit", "phrases"),
    [
        (lambda p: p.replace("command:", "comand:"), ["line 5", "services[0].comand"]),
        (lambda p: p.replace("name: token", "name: other"), ["services[0].secrets.TOKEN"]),
        (lambda p: p.replace(MEASUREMENT, "abc"), ["services[0].measurement"]),
        (lambda p: p + "  - [", ["not YAML"]),
    ],
    ids=["unknown-field", "undefined-secret", "bad-measurement", "not-yaml"],
)
def test_sign_refuses_an_invalid_policy_naming_line_and_field(files, edit, phrases):
    _, key, policy = files
    policy.write_text(edit(POLICY))
    refused(enclavectl("sign", "--key", str(key), str(policy)), *phrases)


def test_sign_refuses_a_file_that_is_not_utf8(files):
    _, key, policy = files
    policy.write_bytes(b"name: \xff\n")
    refused(enclavectl("sign", "--key", str(key), str(policy)), "not UTF-8")


def test_sign_refuses_a_file_that_is_not_a_key(files):
    tmp, _, policy = files
    (tmp / "nokey").write_text("hello")
    refused(enclavectl("sign", "--key", str(tmp / "nokey"), str(policy)), "private key")


def test_verify_names_the_signer_whose_signature_fails(files):
    tmp, key, policy = files
    out = enclavectl("sign", "--key", str(key), str(policy)).stdout
    (tmp / "m.yaml").write_text(out.replace("value: t0ken", "value: t0keN"))
    refused(enclavectl("verify", str(tmp / "m.yaml")), "signatures[0]", "does not verify")


def test_encrypt_refuses_an_unreachable_cas(files):
    _, _, policy = files
    port = free_port()  # nothing listens there
    refused(enclavectl("encrypt", "--cas", f"127.0.0.1:{port}", str(policy)), "unreachable")


def test_encrypt_refuses_plain_http(files):
    _, _, policy = files
    refused(enclavectl("encrypt", "--cas", "http://127.0.0.1:1", str(policy)), "https only")
