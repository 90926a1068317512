"""Running the CAS: open the store and keys, serve the client and enclave ports until
SIGTERM or SIGINT, then close the store so that every acknowledged write is on disk."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from enclave_operator.services.cas import identity
from enclave_operator.services.cas.app import client_app, enclave_app
from enclave_operator.services.cas.registry import Registry
from enclave_operator.services.cas.store import Store

log = logging.getLogger("enclave_operator.cas")


@dataclass(frozen=True)
class Settings:
    db_dir: Path
    tls_dir: Path | None = None
    client_port: int = 8081
    enclave_port: int = 18765
    host: str = "0.0.0.0"
    ephemeral: bool = False
    tls_reload: float = 10.0  # seconds between looks at --tls-dir for a renewed certificate


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    store = Store(settings.db_dir)
    registry = Registry(store, identity.encryption_key(settings.db_dir))
    files = identity.tls_files(settings.tls_dir, settings.db_dir)
    context = identity.server_context(files)
    if settings.ephemeral:
        log.warning("the store in %s is ephemeral: policies are lost with this pod", store.path)
    log.info(
        "CAS instance %s: %d policies in %s (%s store); client identities: %s",
        store.instance_id,
        store.count(),
        store.path,
        "new" if store.fresh else "existing",
        files.client_ca or "none (no ca.crt in --tls-dir)",
    )
    runners = []
    watcher = None
    if files.cert.parent == settings.tls_dir:  # a self-signed certificate never changes
        scratch = settings.db_dir / ".tls-reload"
        watcher = asyncio.create_task(
            identity.keep_fresh(files, context, scratch, settings.tls_reload)
        )
    try:
        for app, port in (
            (client_app(registry, settings.ephemeral), settings.client_port),
            (enclave_app(registry, settings.ephemeral), settings.enclave_port),
        ):
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, settings.host, port, ssl_context=context).start()
        log.info("serving on %s: client %d, enclave %d", settings.host, *_ports(settings))
        if ready:
            ready.set()
        await _until_stopped()
    finally:
        if watcher is not None:
            watcher.cancel()
        for runner in runners:
            await runner.cleanup()
        store.close()
        log.info("stopped")


def _ports(settings: Settings) -> tuple[int, int]:
    return settings.client_port, settings.enclave_port


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def run(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(settings))
