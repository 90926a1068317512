"""The optional Ingress of the CAS client API: off by default, TLS passed through, and its
host among the names of the certificate that `enclavectl install --domain` makes."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from enclave_operator.api.kinds import CAS
from enclave_operator.charts import chart_path
from enclave_operator.charts.values import values_for
from enclave_operator.devcluster.binaries import toolset
from enclave_operator.install import tls
from enclave_operator.install.options import CR_NAME, Options, chart_values

ROOT = Path(__file__).resolve().parents[2]
HELM = toolset().path("helm")
NS = "enclave-system"

pytestmark = pytest.mark.skipif(
    not HELM.exists(), reason=f"helm binary not built at {HELM} (run scripts/build-tools.sh)"
)


def template(chart: Path, values: Any, release: str = "rel") -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(HELM), "template", release, str(chart), "--namespace", NS, "--values", "-"],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def cas_objects(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    cr = {"metadata": {"name": CR_NAME, "namespace": NS}, "spec": spec}
    docs = template(chart_path(CAS), values_for(CAS, cr, None), release=f"cas-{CR_NAME}")
    return {d["kind"]: d for d in docs}


def test_no_ingress_by_default():
    assert "Ingress" not in cas_objects({})
    assert "Ingress" not in cas_objects({"ingress": {"host": "cas.example.com"}})


def test_install_with_domain_and_ingress_gives_a_passthrough_ingress_the_certificate_names():
    domains = ("cas.example.com", "cas.internal.example")
    opts = Options(namespace=NS, domains=domains, ingress=True)
    # the enclave-operator chart turns --ingress into the CAS resource's spec.ingress
    umbrella = template(ROOT / "charts" / "enclave-operator", chart_values(opts, None, {}))
    (cas_cr,) = [d for d in umbrella if d["kind"] == "CAS"]
    ingress = cas_objects(cas_cr.get("spec") or {})["Ingress"]

    meta = ingress["metadata"]
    assert meta["annotations"]["nginx.ingress.kubernetes.io/ssl-passthrough"] == "true"
    assert meta["labels"]["app.kubernetes.io/part-of"] == "enclave-operator"
    (rule,) = ingress["spec"]["rules"]
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": tls.cas_service(CR_NAME), "port": {"name": "client"}}
    assert "tls" not in ingress["spec"], "passthrough: the controller terminates no TLS"

    secret = tls.tls_secret(opts.domains, CR_NAME, NS)
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert rule["host"] == "cas.example.com"
    assert rule["host"] in names.get_values_for_type(x509.DNSName)


def test_ingress_class_and_annotations_are_kept_beside_passthrough():
    spec = {
        "ingress": {
            "enabled": True,
            "host": "cas.example.com",
            "className": "nginx",
            "annotations": {"example.com/team": "sec"},
        }
    }
    ingress = cas_objects(spec)["Ingress"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["metadata"]["annotations"] == {
        "example.com/team": "sec",
        "nginx.ingress.kubernetes.io/ssl-passthrough": "true",
    }


def test_ingress_without_host_is_refused_by_the_chart():
    cr = {"metadata": {"name": CR_NAME, "namespace": NS}, "spec": {"ingress": {"enabled": True}}}
    proc = subprocess.run(
        [str(HELM), "template", "r", str(chart_path(CAS)), "--values", "-"],
        input=json.dumps(values_for(CAS, cr, None)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "ingress.host is required" in proc.stderr
