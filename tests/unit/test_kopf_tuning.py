"""kopf's diff base (a deep copy of every watched object, for change-detecting handlers) is
dropped when no handler reads it, and kept when one does."""

from __future__ import annotations

import kopf
from kopf._cogs.configs.diffbase import AnnotationsDiffBaseStorage

from enclave_operator.controller.caches import Caches
from enclave_operator.controller.kopf_tuning import NoDiffBase, tune
from enclave_operator.controller.registry import build_registry


def test_the_operators_watches_need_no_diff_base():
    registry = build_registry(Caches(), lambda key: None, "enclave-system")
    settings = kopf.OperatorSettings()
    tune(settings, registry)
    storage = settings.persistence.diffbase_storage
    assert isinstance(storage, NoDiffBase)
    body = kopf.Body({"metadata": {"name": "x"}, "spec": {"a": [1, 2]}})
    assert storage.build(body=body) is None
    assert storage.fetch(body=body) is None


def test_a_change_detecting_handler_keeps_it():
    for register in (kopf.on.update, kopf.timer):
        registry = build_registry(Caches(), lambda key: None, "enclave-system")
        register("v1", "configmaps", registry=registry)(lambda **_: None)
        settings = kopf.OperatorSettings()
        tune(settings, registry)
        assert isinstance(settings.persistence.diffbase_storage, AnnotationsDiffBaseStorage)
