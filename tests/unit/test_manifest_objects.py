"""A release's objects are read from its manifest on every reconcile pass: parsed once."""

from __future__ import annotations

import yaml

from enclave_operator.helm.releases import ObjectRef, manifest_objects


def test_a_manifest_is_parsed_once(monkeypatch):
    calls: list[object] = []
    real = yaml.load_all

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(yaml, "load_all", counting)
    manifest = "apiVersion: v1\nkind: Service\nmetadata:\n  name: parsed-once\n---\n# empty\n"
    first = manifest_objects(manifest, "ns")
    second = manifest_objects(manifest, "ns")
    assert first == second == [ObjectRef("v1", "Service", "ns", "parsed-once")]
    assert len(calls) == 1
    first.clear()  # a caller's list is its own: the next caller still gets every object
    assert manifest_objects(manifest, "ns") == second
