"""Every built-in kind kopf watches for the operator is filtered by the API server.

kopf applies a handler's ``labels=`` after it has received (and built a worker for) every object
of the kind; only ``settings.watching.label_selectors`` reaches the API server. On a cluster
with 10,000 pods that are not ours, one unfiltered pod watch costs more than everything else.
"""

from __future__ import annotations

from typing import Any

import kopf

from enclave_operator.autoupdate.controller import AutoUpdater
from enclave_operator.autoupdate.pulls import PullReporter
from enclave_operator.controller.caches import Caches
from enclave_operator.controller.registry import build_registry, label_selectors
from enclave_operator.policies.controller import PolicyController

NO_KUBE: Any = None  # registering watches talks to no API server


def watched_builtin_kinds() -> set[tuple[str, str]]:
    """(group or "v1", plural) of every non-enclave.dev kind the operator's kopf watches."""
    registry = build_registry(Caches(), lambda _key: None, "enclave-system")
    for extension in (PolicyController, AutoUpdater, PullReporter):
        extension(NO_KUBE, "enclave-system").register(registry)
    handlers = [*registry._watching.get_all_handlers(), *registry._indexing.get_all_handlers()]
    kinds = set()
    for handler in handlers:
        selector = handler.selector
        assert selector is not None
        if not (selector.group or "").endswith("enclave.dev"):
            kinds.add((selector.group or "v1", str(selector.any_name)))
    return kinds


def test_every_builtin_kind_kopf_watches_has_a_server_side_label_selector() -> None:
    settings = kopf.OperatorSettings()
    label_selectors(settings)
    kinds = watched_builtin_kinds()
    assert ("v1", "pods") in kinds  # the pull reporter's
    unfiltered = {k for k in kinds if not settings.watching.label_selectors.get(k)}
    assert not unfiltered
