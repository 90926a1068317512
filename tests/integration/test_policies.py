"""Policies end to end: `enclavectl policy` makes the manifests, the API server stores them,
the operator registers them in CAS processes running on loopback, and what the CAS holds is
checked through its own API."""

from __future__ import annotations

import base64
import json
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from enclave_operator.pki import OPERATOR_CLIENT_SECRET
from tests.integration.conftest import OPERATOR_NAMESPACE, Cluster
from tests.integration.waiting import wait_for
from tests.support.cas_process import CASProcess, Certificates

MEASUREMENT = "ab" * 32


def enclavectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "enclave_operator.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"enclavectl {' '.join(args)}: {proc.stdout}{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster, operator) -> Certificates:
    """One CA for every CAS here; the operator's client certificate in its Secret."""
    made = Certificates.make(tmp_path_factory.mktemp("certs"))
    cert, key = made.client
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/tls",
        "metadata": {"name": OPERATOR_CLIENT_SECRET, "namespace": OPERATOR_NAMESPACE},
        "data": {
            name: base64.b64encode(path.read_bytes()).decode()
            for name, path in (("tls.crt", cert), ("tls.key", key), ("ca.crt", made.ca))
        },
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(secret))
    return made


@pytest.fixture
def cas(certs: Certificates, tmp_path: Path) -> Iterator[CASProcess]:
    proc = CASProcess(tmp_path / "db", certs, tmp_path / "cas.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keys") / "signer"
    enclavectl("policy", "keygen", str(path))
    return path


def policy_file(directory: Path, name: str, secret: str = "s3cret") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(
        f"name: {name}\n"
        "services:\n"
        "  - name: app\n"
        f"    measurement: {MEASUREMENT}\n"
        "    command: [python3, app.py]\n"
        "    secrets: {PASSWORD: password}\n"
        "secrets:\n"
        "  - name: password\n"
        f"    value: {secret}\n"
    )
    return path


def cas_get(cas: CASProcess, path: str) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cafile=str(cas.ca_file()))
    try:
        with urllib.request.urlopen(f"{cas.url}{path}", context=context, timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def status(cluster: Cluster, kind: str, name: str, ns: str) -> dict[str, Any]:
    out = cluster.kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
    if out.returncode != 0:
        return {"absent": out.stderr.strip()}
    body: dict[str, Any] = json.loads(out.stdout)
    return body.get("status") or {}


def condition(st: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions") or [] if c["type"] == kind), {})


def wait_state(cluster: Cluster, kind: str, name: str, ns: str, state: str, timeout: float = 60):
    return wait_for(
        lambda: status(cluster, kind, name, ns),
        lambda s: s.get("state") == state,
        timeout,
        f"{kind} {ns}/{name} {state}",
    )


def apply(cluster: Cluster, manifest: str) -> None:
    cluster.kubectl("apply", "-f", "-", input=manifest)


def signed(key: Path, policy: Path, cas: CASProcess, ns: str) -> str:
    args = ["policy", "sign", "--key", str(key), "--cas-address", cas.address, "-n", ns]
    return enclavectl(*args, str(policy)).stdout


def test_keygen_sign_apply_registers(cluster, namespace, cas, key, tmp_path):
    manifest = signed(key, policy_file(tmp_path, "alpha"), cas, namespace)
    assert "ok: signed by" in enclavectl("policy", "verify", _write(tmp_path, manifest)).stdout
    apply(cluster, manifest)
    st = wait_state(cluster, "spol", "alpha", namespace, "REGISTERED")
    code, meta = cas_get(cas, "/v1/policies/alpha")
    assert code == 200
    assert meta["digest"] == st["digest"]
    assert meta["kind"] == "signed"
    assert "s3cret" not in json.dumps(meta)
    assert condition(st, "Registered")["status"] == "True"
    assert st["signers"] == [s["fingerprint"] for s in meta["signers"]]
    table = cluster.kubectl("get", "spol", "-n", namespace).stdout
    assert "REGISTERED" in table
    assert "alpha" in table


def test_one_changed_byte_fails_with_the_cas_reason(cluster, namespace, cas, key, tmp_path):
    manifest = signed(key, policy_file(tmp_path, "beta"), cas, namespace)
    tampered = manifest.replace("value: s3cret", "value: s3creT")
    assert tampered != manifest
    apply(cluster, tampered)
    st = wait_state(cluster, "spol", "beta", namespace, "FAILED")
    registered = condition(st, "Registered")
    assert registered["reason"] == "SignatureInvalid"
    assert "does not verify" in registered["message"]
    assert cas_get(cas, "/v1/policies/beta")[0] == 404


def test_encrypted_for_another_cas_fails(cluster, namespace, certs, cas, key, tmp_path):
    other = CASProcess(tmp_path / "other-db", certs, tmp_path / "other.log")
    other.start()
    try:
        args = ["policy", "encrypt", "--ca", str(certs.ca), "-n", namespace]
        for_a = enclavectl(
            *args,
            "--cas",
            cas.address,
            "--cas-address",
            other.address,
            "--name",
            "for-a",
            str(policy_file(tmp_path, "gamma")),
        ).stdout
        apply(cluster, for_a)
        st = wait_state(cluster, "epol", "for-a", namespace, "FAILED")
        assert "encrypted for another CAS" in condition(st, "Registered")["message"]
        for_b = enclavectl(
            *args,
            "--cas",
            other.address,
            "--key",
            str(key),
            "--name",
            "for-b",
            str(policy_file(tmp_path, "gamma")),
        ).stdout
        apply(cluster, for_b)
        wait_state(cluster, "epol", "for-b", namespace, "REGISTERED")
        code, meta = cas_get(other, "/v1/policies/gamma")
        assert (code, meta["kind"]) == (200, "encrypted")
        assert "s3cret" not in json.dumps(meta)
    finally:
        other.stop()


def test_pending_while_the_cas_is_down_then_registered(cluster, namespace, certs, key, tmp_path):
    late = CASProcess(tmp_path / "db", certs, tmp_path / "late.log")  # ports chosen, not started
    apply(cluster, signed(key, policy_file(tmp_path, "delta"), late, namespace))
    st = wait_state(cluster, "spol", "delta", namespace, "PENDING")
    assert condition(st, "CASReachable")["status"] == "False"
    late.start()
    try:
        wait_state(cluster, "spol", "delta", namespace, "REGISTERED", timeout=90)
        assert cas_get(late, "/v1/policies/delta")[0] == 200
    finally:
        late.stop()


def test_deleting_the_resource_deletes_it_from_the_cas(cluster, namespace, cas, key, tmp_path):
    apply(cluster, signed(key, policy_file(tmp_path, "epsilon"), cas, namespace))
    wait_state(cluster, "spol", "epsilon", namespace, "REGISTERED")
    cluster.kubectl("delete", "spol", "epsilon", "-n", namespace, "--timeout=60s")
    assert "absent" in status(cluster, "spol", "epsilon", namespace)
    assert cas_get(cas, "/v1/policies/epsilon")[0] == 404


def test_restarts_keep_or_regain_every_policy(cluster, namespace, cas, key, tmp_path):
    names = ["zeta", "eta"]
    for n in names:
        apply(cluster, signed(key, policy_file(tmp_path, n), cas, namespace))
    for n in names:
        wait_state(cluster, "spol", n, namespace, "REGISTERED")
    first = cas_get(cas, "/v1/version")[1]["instanceId"]
    cas.stop()
    cas.start()  # same database directory: everything is still there
    assert cas_get(cas, "/v1/version")[1]["instanceId"] == first
    assert all(cas_get(cas, f"/v1/policies/{n}")[0] == 200 for n in names)
    cas.stop()
    cas.db_dir = tmp_path / "empty-db"
    cas.start()  # an empty store: the operator registers them again
    second = cas_get(cas, "/v1/version")[1]["instanceId"]
    assert second != first
    for n in names:
        wait_for(
            lambda n=n: status(cluster, "spol", n, namespace).get("casInstance"),
            lambda seen: seen == second,
            60,
            f"{n} registered in the new CAS instance",
        )
        assert cas_get(cas, f"/v1/policies/{n}")[0] == 200


def _write(directory: Path, manifest: str) -> str:
    path = directory / "manifest.yaml"
    path.write_text(manifest)
    assert yaml.safe_load(manifest)["kind"] in ("SignedPolicy", "EncryptedPolicy")
    return str(path)
