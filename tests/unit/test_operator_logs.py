"""`enclavectl operator run --log-format json`: one JSON object per line, and the resource a
line is about as fields (tests/integration/test_operator_logs.py runs the real operator)."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest

from enclave_operator import logs


def emit(formatter: logging.Formatter, **extra: object) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.logs.{id(out)}")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        raise RuntimeError("helm said no\nsecond line")
    except RuntimeError:
        logger.exception("%s: reconcile failed; again in %.0fs", "key", 2.0, extra=extra)
    return out.getvalue()


def test_a_line_about_a_resource_is_one_json_object_with_its_identity():
    text = emit(logs.JsonFormatter(), **logs.cr("CAS", "apps", "enclave"))
    assert text.count("\n") == 1, "the traceback stays inside the object"
    entry = json.loads(text)
    assert (entry["kind"], entry["namespace"], entry["name"]) == ("CAS", "apps", "enclave")
    assert entry["message"] == "key: reconcile failed; again in 2s"
    assert entry["level"] == "ERROR"
    assert entry["logger"].startswith("test.logs.")
    assert entry["time"].endswith("Z")
    assert "helm said no\\nsecond line" in text
    assert "RuntimeError" in entry["exception"]


def test_cluster_scoped_resources_and_kopf_references():
    assert json.loads(emit(logs.JsonFormatter(), **logs.cr("LAS", None, "l")))["namespace"] == ""
    ref = {"apiVersion": "v1", "kind": "Node", "name": "n1", "uid": "u"}
    entry = json.loads(emit(logs.JsonFormatter(), k8s_ref=ref))
    assert (entry["kind"], entry["namespace"], entry["name"]) == ("Node", "", "n1")


def test_other_lines_carry_no_identity_and_text_stays_text():
    entry = json.loads(emit(logs.JsonFormatter()))
    assert not {"kind", "namespace", "name"} & set(entry)
    text = emit(logging.Formatter(logs.TEXT), **logs.cr("CAS", "apps", "enclave"))
    assert "key: reconcile failed" in text.splitlines()[0]
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="xml"):
        logs.configure("xml", verbose=False)
    done = subprocess.run(
        [sys.executable, "-m", "enclave_operator.cli", "operator", "run", "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "xml" in done.stderr
