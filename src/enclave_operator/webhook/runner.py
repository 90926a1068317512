"""The webhook inside the operator: settings, certificates, registration, CA copies.

An operator Extension (controller.run): ``run`` serves until cancelled. Without its ConfigMap
the webhook stays off, so an operator installed without it behaves as before.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import datetime as dt
import logging
import time
from typing import Any

from enclave_operator.kube import ApiException, Kube
from enclave_operator.webhook import certs, configuration
from enclave_operator.webhook.server import Admission, Server
from enclave_operator.webhook.settings import (
    BY_NAME,
    DEFAULT_SETTINGS_NAME,
    SETTINGS_KEY,
    Plugin,
    Settings,
    SettingsError,
    detect,
    parse,
)

log = logging.getLogger(__name__)
STRATEGIC = "application/strategic-merge-patch+json"
COPY = {"app.kubernetes.io/name": "enclave-operator", "app.kubernetes.io/component": "cas-ca"}
"""Labels of the CAS CA copies, by which `enclavectl uninstall` finds them in every namespace."""


async def read_settings(kube: Kube, namespace: str, name: str) -> Settings | None:
    """The settings ConfigMap's; None: the webhook is off (absent, unreadable or invalid)."""
    try:
        body = await kube.get(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    except ApiException as e:
        if e.status in (403, 404):
            log.info("webhook off: no ConfigMap %s/%s", namespace, name)
            return None
        raise
    try:
        return parse((body.get("data") or {}).get(SETTINGS_KEY, "{}"))
    except SettingsError as e:
        log.error("webhook off: ConfigMap %s/%s: %s", namespace, name, e)
        return None


def stopping(error: BaseException) -> None:
    """Raise a cancellation that arrived as ``error``. An HTTP client's timeout may turn the
    CancelledError of a stop into a TimeoutError, an OSError: a retry loop that takes it for a
    failure of the API server would go on serving, and its configuration stay registered."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError from error


class WebhookRunner:
    every_replica = True
    """Admission must not wait for a leader: every replica serves it. Its writes (the
    certificate Secret, caBundle, CA copies) carry resourceVersions or are idempotent."""

    def __init__(
        self,
        operator_namespace: str,
        *,
        config_name: str = DEFAULT_SETTINGS_NAME,
        address: str = "127.0.0.1",
        port: int | None = None,
        settings: Settings | None = None,
        kubeconfig: str | None = None,
    ) -> None:
        self.namespace, self.config_name = operator_namespace, config_name
        self.address, self.port, self.kubeconfig = address, port, kubeconfig
        self.settings = settings
        self.server: Server | None = None
        self.url: str | None = None
        self._trusted: dict[str, float] = {}  # CA fingerprint → when first seen in the bundle
        self._namespaces: set[str] = set()
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def register(self, registry: object) -> None:
        """No kopf watches: the webhook needs none."""

    @property
    def secret_name(self) -> str:
        assert self.settings is not None
        return f"{self.settings.configuration}-tls"

    async def _detect(self, kube: Kube, settings: Settings) -> Plugin | None:
        if settings.plugin != "auto":
            return BY_NAME[settings.plugin]
        nodes = (await kube.get("/api/v1/nodes")).get("items") or []
        return detect([(n.get("status") or {}).get("capacity") or {} for n in nodes])

    def hosts(self, settings: Settings) -> list[str]:
        if settings.service:
            svc = f"{settings.service}.{self.namespace}"
            return [settings.service, svc, f"{svc}.svc", f"{svc}.svc.cluster.local"]
        return [self.address]

    async def _material(self, kube: Kube, settings: Settings) -> certs.Material:
        """The Secret's material, renewed as due; written back when it changed."""
        path = f"/api/v1/namespaces/{self.namespace}/secrets/{self.secret_name}"
        try:
            secret: dict[str, Any] | None = await kube.get(path)
        except ApiException as e:
            if e.status != 404:
                raise
            secret = None
        data = {k: base64.b64decode(v) for k, v in ((secret or {}).get("data") or {}).items()}
        have = certs.Material.from_data(data)
        trusted_since = self._trusted.get(certs.fingerprint(have.ca_cert))
        trusted_for = time.monotonic() - trusted_since if trusted_since is not None else 0.0
        now = dt.datetime.now(dt.UTC)
        want = certs.plan(have, settings, self.hosts(settings), now, trusted_for)
        if want != have:
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": self.secret_name,
                    "namespace": self.namespace,
                    "labels": {"app.kubernetes.io/name": "enclave-operator"},
                },
                "data": {k: base64.b64encode(v).decode() for k, v in want.data().items() if v},
            }
            if secret is None:
                await kube.create(f"/api/v1/namespaces/{self.namespace}/secrets", body)
            else:  # resourceVersion: a concurrent writer makes this fail, not overwrite
                body["metadata"]["resourceVersion"] = secret["metadata"]["resourceVersion"]
                await kube.request("PUT", path, body)
            log.info("webhook: certificate material renewed")
        return want

    async def _register(self, kube: Kube, settings: Settings, bundle: bytes) -> bytes | None:
        """Put ``bundle`` into the configuration (creating it when local); what it now holds."""
        path = f"{configuration.PATH_PREFIX}/{settings.configuration}"
        try:
            current: dict[str, Any] | None = await kube.get(path)
        except ApiException as e:
            if e.status != 404:
                raise
            current = None
        if settings.service:
            if current is None:
                log.warning("webhook: no MutatingWebhookConfiguration %s yet", path)
                return None
            if configuration.current_ca_bundle(current) != bundle:
                current = await kube.request(
                    "PATCH", path, configuration.ca_bundle_patch(bundle), STRATEGIC
                )
            return configuration.current_ca_bundle(current)
        assert self.url is not None
        want = configuration.by_url(settings, self.namespace, self.url, bundle)
        if current is None:
            current = await kube.create(configuration.PATH_PREFIX, want)
        elif current.get("webhooks") != want["webhooks"]:
            want["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            current = await kube.request("PUT", path, want)
        return configuration.current_ca_bundle(current)

    async def _copy_ca(self, kube: Kube, settings: Settings, namespaces: set[str]) -> None:
        """Pods read CAS's CA from a ConfigMap in their own namespace (a volume cannot name a
        Secret elsewhere): keep a copy of ca.crt in each namespace with injected pods."""
        if not settings.cas_ca_configmap or not namespaces:
            return
        src = f"/api/v1/namespaces/{settings.cas_ca_namespace}/secrets/{settings.cas_ca_secret}"
        try:
            ca = base64.b64decode((await kube.get(src)).get("data", {}).get("ca.crt", "")).decode()
        except ApiException as e:
            log.warning("webhook: cannot read the CAS CA %s: %s", src, e.reason)
            return
        for ns in sorted(namespaces):
            body = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": settings.cas_ca_configmap, "namespace": ns, "labels": COPY},
                "data": {"ca.crt": ca},
            }
            path = f"/api/v1/namespaces/{ns}/configmaps/{settings.cas_ca_configmap}"
            try:
                have = await kube.get(path)
                if (have.get("data") or {}).get("ca.crt") != ca:
                    await kube.request("PUT", path, {**body, "metadata": have["metadata"]})
            except ApiException as e:
                if e.status != 404:
                    log.warning("webhook: CA copy in %s: %s", ns, e.reason)
                    continue
                await kube.create(f"/api/v1/namespaces/{ns}/configmaps", body)

    def _admitted(self, namespace: str) -> None:
        """Called on the server's thread: hand a new namespace to the runner's loop. A known one
        costs nothing: waking the other loop (a self-pipe write per admission) was a tenth of
        the server thread's time at 200 pods/s. Reading the set from this thread is safe: the
        loop only ever adds to it."""
        if namespace in self._namespaces:
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._note, namespace)

    def _note(self, namespace: str) -> None:
        if namespace not in self._namespaces:
            self._namespaces.add(namespace)
            self._wake.set()

    async def _tick(self, kube: Kube, settings: Settings, admission: Admission) -> None:
        assert self.server is not None
        material = await self._material(kube, settings)
        self.server.load(material.cert, material.key)
        held = await self._register(kube, settings, material.bundle)
        fp = certs.fingerprint(material.ca_cert)
        if held is not None and material.ca_cert in held:
            self._trusted.setdefault(fp, time.monotonic())
        admission.detected = await self._detect(kube, settings)
        await self._copy_ca(kube, settings, self._namespaces)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        kube = await Kube.connect(self.kubeconfig)
        try:
            settings = self.settings or await read_settings(kube, self.namespace, self.config_name)
            if settings is None:
                return
            self.settings = settings
            await self._serve(kube, settings)
        finally:
            await kube.close()

    async def _serve(self, kube: Kube, settings: Settings) -> None:
        admission = Admission(settings, None, self._admitted)
        port = self.port if self.port is not None else (settings.port if settings.service else 0)
        host = "0.0.0.0" if settings.service else self.address
        self.server = Server(admission, host, port)
        interval = max(0.5, min(60.0, settings.propagation / 2, settings.cert_validity / 12))
        try:
            while True:  # the namespace or its permissions may not be there yet
                try:
                    material = await self._material(kube, settings)
                    break
                except (ApiException, OSError) as e:
                    stopping(e)
                    log.warning("webhook: certificate: %s (retrying in %.0fs)", e, interval)
                    await asyncio.sleep(interval)
            self.server.load(material.cert, material.key)
            bound = self.server.start()
            self.url = f"https://{self.address}:{bound}{configuration.PATH}"
            log.info("webhook: serving on %s:%d", host, bound)
            while True:
                try:
                    await self._tick(kube, settings, admission)
                except (ApiException, OSError) as e:
                    stopping(e)
                    log.warning("webhook: %s (retrying in %.0fs)", e, interval)
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(interval):  # tells its own expiry from a stop
                        await self._wake.wait()
        finally:
            if not settings.service and self.url is not None:
                self._unregister(settings)
            self.server.stop()

    def _unregister(self, settings: Settings) -> None:
        """A local operator removes its configuration on the way out: nothing else would, and
        it would point at a port nobody serves. Blocking on purpose: at shutdown the task is
        cancelled more than once (kopf's exit, then asyncio.run's), which would cut an await."""
        path = f"{configuration.PATH_PREFIX}/{settings.configuration}"

        async def delete() -> None:
            kube = await Kube.connect(self.kubeconfig)
            try:
                await kube.request("DELETE", path)
            finally:
                await kube.close()

        try:
            with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop of its own
                pool.submit(asyncio.run, delete()).result(timeout=30)
            log.info("webhook: removed %s", settings.configuration)
        except ApiException as e:
            if e.status != 404:
                log.warning("webhook: could not remove %s: %s", settings.configuration, e)
        except Exception as e:  # shutting down: say it, do not hide the original exit
            log.warning("webhook: could not remove %s: %s", settings.configuration, e)
