"""Enrolment when CAS requires a LAS client certificate (ENCLAVE_CAS_LAS_ENROLMENT=
certificate), over real mutual TLS between the two processes."""

from __future__ import annotations

import pytest

from tests.support.cas_process import CASProcess
from tests.support.las_process import LASProcess, certificates_with_las_client


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    root = tmp_path_factory.mktemp("enrol")
    certs = certificates_with_las_client(root / "certs")
    cas = CASProcess(root / "db", certs, root / "cas.log")
    mp = pytest.MonkeyPatch()
    mp.setenv("ENCLAVE_CAS_LAS_ENROLMENT", "certificate")
    try:
        cas.start()
    finally:
        mp.undo()
    yield cas
    cas.stop()


def las_for(cas: CASProcess, tmp_path, name: str | None) -> LASProcess:
    certs = cas.certs
    assert certs is not None
    extra: tuple[str, ...] = ()
    if name:
        d = certs.directory
        extra = (f"--client-cert={d / f'{name}.crt'}", f"--client-key={d / f'{name}.key'}")
    return LASProcess(
        tmp_path / "las.log", f"127.0.0.1:{cas.enclave_port}", certs.ca, extra, node="node-c"
    )


def test_las_with_a_certificate_of_cas_ca_is_enrolled_authenticated(cas, tmp_path):
    las = las_for(cas, tmp_path, "las")
    las.start()
    try:
        version = las.wait_enrolled()
    finally:
        las.stop()
    assert version["enrolled"] is True, version
    assert "node-c: client certificate" in cas.log.read_text()


@pytest.mark.parametrize("name", [None, "stranger"])
def test_las_without_a_valid_certificate_is_not_enrolled(cas, tmp_path, name):
    las = las_for(cas, tmp_path, name)
    las.start()
    try:
        version = las.get("/v1/version")
        for _ in range(300):  # CAS is up: the first attempt's outcome, with a bound
            if version["enrolled"] or version["enrolmentError"]:
                break
            las.wait_enrolled(timeout=0.1)
            version = las.get("/v1/version")
    finally:
        las.stop()
    assert version["enrolled"] is False
    if name is None:
        assert "needs a client certificate (CN enclave-las)" in version["enrolmentError"]
    else:  # a certificate of another CA fails the TLS handshake
        assert "unreachable" in version["enrolmentError"]


def test_a_client_certificate_that_comes_later_is_used_without_a_restart(cas, tmp_path):
    """As a Secret volume that Kubernetes fills after LAS started (or a renewed certificate):
    LAS reads its files again before each attempt."""
    certs = cas.certs
    assert certs is not None
    later = tmp_path / "client"
    later.mkdir()
    las = LASProcess(
        tmp_path / "las.log",
        f"127.0.0.1:{cas.enclave_port}",
        certs.ca,
        (f"--client-cert={later / 'tls.crt'}", f"--client-key={later / 'tls.key'}"),
        node="node-d",
    )
    las.start()
    try:
        for _ in range(300):  # the first attempt, refused: no certificate yet
            version = las.get("/v1/version")
            if version["enrolmentError"]:
                break
            las.wait_enrolled(timeout=0.1)
        assert "needs a client certificate" in version["enrolmentError"]
        (later / "tls.key").write_bytes((certs.directory / "las.key").read_bytes())
        (later / "tls.crt").write_bytes((certs.directory / "las.crt").read_bytes())
        version = las.wait_enrolled()
    finally:
        las.stop()
    assert version["enrolled"] is True, version
    assert "node-d: client certificate" in cas.log.read_text()
    assert "enrolling with client certificate" in las.log.read_text()
