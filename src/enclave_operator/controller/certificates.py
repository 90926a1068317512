"""When each CAS's TLS certificate expires, from a watch of the TLS Secrets our installations
make (``app.kubernetes.io/part-of=enclave-operator``, type ``kubernetes.io/tls``, both selected
server-side): only the expiry is kept, never a key.

A pass reads it here to report the certificate's expiry (status, metric, condition); a Secret
that changes re-queues the CAS that serves it. kopf's Secret stream is selected on Helm's
release records, so this one has its own small loop, listing again after a 410 or a broken
stream.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from cryptography import x509
from kubernetes.aio import client as aclient
from kubernetes.aio import watch

from enclave_operator.kube import Kube

log = logging.getLogger("enclave_operator.controller")
FIELDS = "type=kubernetes.io/tls"
LABELS = "app.kubernetes.io/part-of=enclave-operator"
WATCH_SECONDS = 300
UNREADABLE = -1.0


def not_after(secret: Mapping[str, Any]) -> float:
    """The expiry of the Secret's tls.crt, as unix time; UNREADABLE when it cannot be read."""
    try:
        pem = base64.b64decode((secret.get("data") or {}).get("tls.crt") or "")
        return x509.load_pem_x509_certificate(pem).not_valid_after_utc.timestamp()
    except ValueError:
        return UNREADABLE


class Certificates:
    def __init__(
        self, kube: Kube, changed: Callable[[str, str], None], namespaces: Sequence[str] = ()
    ) -> None:
        """``changed(namespace, name)``: a TLS Secret came, changed or left. ``namespaces``:
        only these (the namespaced mode), else every namespace."""
        self._core = aclient.CoreV1Api(kube.api)
        self._changed = changed
        self._expiry: dict[tuple[str, str], float] = {}
        self._scopes: list[str | None] = list(namespaces) or [None]

    def expiry(self, namespace: str, name: str) -> float | None:
        """Unix time the certificate expires; None: no such Secret (yet); UNREADABLE."""
        return self._expiry.get((namespace, name))

    async def run(self) -> None:
        await asyncio.gather(*(self._follow(scope) for scope in self._scopes))

    def _call(self, scope: str | None) -> tuple[Any, dict[str, str]]:
        if scope is None:
            return self._core.list_secret_for_all_namespaces, {}
        return self._core.list_namespaced_secret, {"namespace": scope}

    async def _follow(self, scope: str | None) -> None:
        delay = 1.0
        while True:
            try:
                version = await self._list(scope)
                delay = 1.0
                while True:
                    version = await self._watch(scope, version)
            except asyncio.CancelledError:
                raise
            except aclient.ApiException as e:
                if e.status == 410:  # too old a version: list again at once
                    continue
                log.warning("TLS Secret watch: %s %s; again in %.0fs", e.status, e.reason, delay)
            except Exception as e:
                log.warning("TLS Secret watch failed (%s); again in %.0fs", e, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    async def _list(self, scope: str | None) -> str:
        call, where = self._call(scope)
        listing: Any = await call(field_selector=FIELDS, label_selector=LABELS, **where)
        found = {
            (str(s.metadata.namespace), str(s.metadata.name)): not_after({"data": s.data})
            for s in listing.items
        }
        mine = {k: v for k, v in self._expiry.items() if scope is None or k[0] == scope}
        for key in mine:
            self._expiry.pop(key)
        self._expiry.update(found)
        for key in sorted(set(mine) | set(found)):
            if mine.get(key) != found.get(key):
                self._changed(*key)
        return str(listing.metadata.resource_version)

    async def _watch(self, scope: str | None, version: str) -> str:
        """Follow the stream until the API server ends it; the version to resume from."""
        call, where = self._call(scope)
        stream: Any = watch.Watch()  # type: ignore[no-untyped-call]
        try:
            async for event in stream.stream(
                call,
                field_selector=FIELDS,
                label_selector=LABELS,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=WATCH_SECONDS,
                **where,
            ):
                version = self._apply(event) or version
        finally:
            stream.stop()
        return version

    def _apply(self, event: Mapping[str, Any]) -> str | None:
        body = event["raw_object"]
        meta = body.get("metadata") or {}
        if event["type"] != "BOOKMARK":
            key = (str(meta.get("namespace")), str(meta.get("name")))
            if event["type"] == "DELETED":
                self._expiry.pop(key, None)
            else:
                self._expiry[key] = not_after(body)
            self._changed(*key)
        version = meta.get("resourceVersion")
        return str(version) if version else None
