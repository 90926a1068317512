"""The operator chart's own certificates (tls.create): the CA is kept, with its key, beside the
CAS's certificate so that the operator can renew it; every Secret carries the label the
operator's expiry watch selects on; and the chain passes strict verification."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from enclave_operator.devcluster.binaries import ensure_built
from enclave_operator.pki import reissue
from tests.unit.test_pki_strict import handshake

CHART = Path(__file__).resolve().parents[2] / "charts" / "enclave-operator"


def secrets() -> dict[str, dict[str, bytes]]:
    import subprocess

    helm = ensure_built().directory / "helm"
    proc = subprocess.run(
        [str(helm), "template", "enclave", str(CHART), "-n", "ns1"],
        capture_output=True,
        text=True,
        check=True,
    )
    docs: list[Any] = [d for d in yaml.safe_load_all(proc.stdout) if d]
    found = {}
    for d in docs:
        if d["kind"] == "Secret":
            assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "enclave-operator"
            found[d["metadata"]["name"]] = {k: base64.b64decode(v) for k, v in d["data"].items()}
    return found


def test_the_chart_keeps_its_ca_for_renewal(tmp_path: Path):
    s = secrets()
    tls, ca = s["cas-enclave-tls"], s["cas-enclave-ca"]
    assert ca["tls.crt"] == tls["ca.crt"] == s["enclave-operator-cas-client"]["ca.crt"]
    authority = x509.load_pem_x509_certificate(ca["tls.crt"])
    x509.load_pem_x509_certificate(tls["tls.crt"]).verify_directly_issued_by(authority)
    handshake(tmp_path, tls["ca.crt"], tls["tls.crt"], tls["tls.key"])  # strict
    renewed = reissue(tls["tls.crt"], ca["tls.crt"], ca["tls.key"], dt.timedelta(days=365))
    handshake(tmp_path, tls["ca.crt"], renewed.cert, renewed.key)
