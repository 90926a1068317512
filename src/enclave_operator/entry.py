"""What the operator's long-running processes do first, before they import their framework."""

from __future__ import annotations

import sys


def without_client_library() -> None:
    """kopf imports the Kubernetes client library whenever it is installed (enclavectl needs
    it), only to recognise that library's model objects; the operator hands kopf plain dicts
    and talks to the API through `kube`. Importing it loads every model class: about 20 MiB
    in each process. Called before anything imports kopf; later imports of the library then
    fail at once, which the import contracts rule out for the operator's own modules."""
    if "kubernetes" not in sys.modules:
        sys.modules["kubernetes"] = None  # type: ignore[assignment]
