"""The attestation path end to end with CAS and LAS as local processes on loopback (real TLS,
real quotes): a signed policy grants a secret to a measurement, `enclavectl enclave run` of
that program receives it, everything else is refused with a reason and no secret anywhere."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enclave_operator.attestation import quote as quotes
from enclave_operator.attestation.measurement import measure, resolve
from enclave_operator.policies import signing
from enclave_operator.policies.client import CASClient, tls_context
from tests.support.cas_process import CASProcess, Certificates
from tests.support.las_process import (
    LASProcess,
    enclave_run,
    policy_text,
    workload_script,
)

SECRET = "s3cr3t-" + secrets.token_hex(8)
DIGEST = hashlib.sha256(SECRET.encode()).hexdigest()


class Setup:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.certs = Certificates.make(root / "certs")
        self.cas = CASProcess(root / "db", self.certs, root / "cas.log")
        self.las = LASProcess(root / "las.log", self.cas_enclave, self.certs.ca)
        self.app = workload_script(root / "show.py", "the granted program")
        self.other = workload_script(root / "other.py", "another program")

    @property
    def cas_enclave(self) -> str:
        return f"127.0.0.1:{self.cas.enclave_port}"

    def run(self, argv: list[str], config_id: str | None = "demo/app", **kw):
        args = {"las": self.las.address, "cas": self.cas_enclave, "ca": self.certs.ca, **kw}
        return enclave_run(argv, config_id, **args)

    def register(self, text: str) -> None:
        async def go() -> None:
            sig = signing.sign(text.encode(), signing.generate())
            async with CASClient(self.cas.address, tls_context(self.certs.ca)) as client:
                await client.register_signed(text, [sig.as_dict()])

        asyncio.run(go())

    def attest_raw(self, body: object) -> tuple[int, dict[str, Any]]:
        ctx = ssl.create_default_context(cafile=str(self.certs.ca))
        req = urllib.request.Request(
            f"https://{self.cas_enclave}/v1/attest",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """LAS started before CAS; CAS then comes up and a policy for show.py is registered."""
    s = Setup(tmp_path_factory.mktemp("attest"))
    s.las.start()
    s.before = s.las.get("/v1/version")
    s.cas.start()
    measured = measure(resolve(str(s.app)), [])
    s.register(policy_text("demo", measured, [str(s.app)], SECRET))
    yield s
    s.las.stop()
    s.cas.stop()


def test_las_started_before_cas_enrols_once_cas_is_up(setup):
    assert setup.before["enrolled"] is False
    assert setup.before["enrolmentError"]  # it tried, CAS was not there
    version = setup.las.wait_enrolled()
    assert version["enrolled"] is True, version
    assert version["casInstanceId"]
    assert "unauthenticated (simulation)" in setup.cas.log.read_text()


def test_granted_program_receives_its_secret(setup):
    setup.las.wait_enrolled()
    proc = setup.run([str(setup.app)])
    assert proc.returncode == 0, proc.stderr
    assert f"secret-sha256 {DIGEST}" in proc.stdout
    assert "greeting hello" in proc.stdout
    assert SECRET not in proc.stdout + proc.stderr


def test_different_program_is_refused(setup):
    setup.las.wait_enrolled()
    proc = setup.run([str(setup.other)])
    assert proc.returncode == 1
    assert "CAS refused attestation as demo/app" in proc.stderr
    assert "is not the one policy 'demo' grants" in proc.stderr
    assert "secret-sha256" not in proc.stdout


def test_same_program_other_arguments_is_refused(setup):
    setup.las.wait_enrolled()
    proc = setup.run([str(setup.app), "--extra"])
    assert proc.returncode == 1
    assert "measurement" in proc.stderr


@pytest.mark.parametrize(
    ("config_id", "reason"),
    [
        ("nope/app", "no policy 'nope'"),
        ("demo/nope", "no service 'demo/nope'"),
        ("not a config id", "is not a config id"),
        (None, "no config id"),
    ],
)
def test_unknown_or_missing_config_id_is_refused(setup, config_id, reason):
    setup.las.wait_enrolled()
    proc = setup.run([str(setup.app)], config_id=config_id)
    assert proc.returncode == 1
    assert reason in proc.stderr


def test_quote_from_a_key_cas_never_enrolled_is_refused(setup):
    stranger = ed25519.Ed25519PrivateKey.generate()
    measured = measure(resolve(str(setup.app)), [])
    q = quotes.issue(stranger, "node-x", measured, b"\x01" * 32)
    status, body = setup.attest_raw({"configId": "demo/app", "quote": q.as_dict()})
    assert status == 403
    assert body["error"]["code"] == "LasNotEnrolled"
    assert quotes.fingerprint(q.las) in body["error"]["message"]
    assert SECRET not in json.dumps(body)


def test_quote_with_forged_measurement_is_refused(setup):
    """A quote of the enrolled LAS whose measurement was changed after signing."""
    setup.las.wait_enrolled()
    req = urllib.request.Request(
        f"http://{setup.las.address}/v1/quote",
        data=json.dumps({"measurement": "ab" * 32, "reportData": ""}).encode(),
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        q = json.loads(r.read())["quote"]
    q["measurement"] = measure(resolve(str(setup.app)), [])
    q["reportData"] = base64.b64encode(b"\x01" * 32).decode()
    status, body = setup.attest_raw({"configId": "demo/app", "quote": q})
    assert status == 403
    assert body["error"]["code"] == "QuoteInvalid"


def test_runtime_through_a_las_that_never_enrolled_is_refused(setup, tmp_path):
    lonely = LASProcess(tmp_path / "lonely.log", node="node-b")  # no --cas
    lonely.start()
    try:
        proc = setup.run([str(setup.app)], las=lonely.address)
    finally:
        lonely.stop()
    assert proc.returncode == 1
    assert "which this CAS did not enrol" in proc.stderr


def test_unreachable_cas_and_las_are_refused(setup):
    from enclave_operator.devcluster.processes import free_port

    nowhere = f"127.0.0.1:{free_port()}"
    proc = setup.run([str(setup.app)], cas=nowhere)
    assert proc.returncode == 1
    assert f"CAS at https://{nowhere}/v1/attest unreachable" in proc.stderr
    proc = setup.run([str(setup.app)], las=nowhere)
    assert proc.returncode == 1
    assert f"LAS at http://{nowhere}/v1/quote unreachable" in proc.stderr


def test_cas_verified_with_the_wrong_ca_is_refused(setup, tmp_path):
    other = Certificates.make(tmp_path / "other")
    proc = setup.run([str(setup.app)], ca=other.ca)
    assert proc.returncode == 1
    assert "unreachable" in proc.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in proc.stderr


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1]", "body"),
        (b'{"measurement": "xyz"}', "measurement"),
        (b'{"measurement": 5}', "measurement"),
        (json.dumps({"measurement": "ab" * 32, "reportData": "!!"}).encode(), "reportData"),
        (json.dumps({"measurement": "ab" * 32, "reportData": 7}).encode(), "reportData"),
        (
            json.dumps({"measurement": "ab" * 32, "reportData": "QQ==" * 30}).encode(),
            "reportData",
        ),
        (b"\xff\xfe", "body"),
    ],
)
def test_las_bad_input_is_a_4xx_with_a_reason(setup, body, field):
    req = urllib.request.Request(f"http://{setup.las.address}/v1/quote", data=body)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 400
    error = json.loads(e.value.read())["error"]
    assert error["message"]
    assert error.get("field", "") == field
    assert setup.las.alive()


def test_las_body_over_the_limit_is_a_413(setup):
    req = urllib.request.Request(f"http://{setup.las.address}/v1/quote", data=b" " * 20000)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 413
    assert json.loads(e.value.read())["error"]["field"] == "body"


def test_no_secret_in_any_log(setup):
    setup.las.wait_enrolled()
    assert setup.run([str(setup.app)]).returncode == 0
    for log in (setup.cas.log, setup.las.log):
        text = log.read_text()
        assert SECRET not in text
        assert DIGEST not in text
    assert "released demo/app (1 secrets)" in setup.cas.log.read_text()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)
QUOTE_KEYS = ["format", "measurement", "reportData", "las", "node", "issued", "signature"]
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {},
        optional={
            "measurement": json_values,
            "reportData": json_values,
            "configId": json_values,
            "key": json_values,
            "node": json_values,
            "timestamp": st.integers() | json_values,
            "proof": json_values,
            "quote": st.fixed_dictionaries({}, optional=dict.fromkeys(QUOTE_KEYS, json_values)),
        },
    ).map(lambda d: json.dumps(d).encode()),
)


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies)
def test_fuzzed_bodies_get_4xx_never_5xx(setup, body):
    ctx = ssl.create_default_context(cafile=str(setup.certs.ca))
    for url, context in (
        (f"http://{setup.las.address}/v1/quote", None),
        (f"https://{setup.cas_enclave}/v1/attest", ctx),
        (f"https://{setup.cas_enclave}/v1/las/enrol", ctx),
    ):
        req = urllib.request.Request(url, data=body)
        try:
            with urllib.request.urlopen(req, context=context, timeout=10) as r:
                status, answer = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            status, answer = e.code, json.loads(e.read())
        assert status < 500, (url, body)
        assert status < 300 or answer["error"]["message"]


def test_services_alive_after_the_fuzzing(setup):
    assert setup.las.alive()
    assert setup.cas.alive()
