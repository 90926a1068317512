"""Running LAS: the node's attestation key, the HTTP API on the hostPort, and enrolment with
CAS in the background, until SIGTERM or SIGINT.

LAS speaks plain HTTP: it is reached on the node's own address, quotes carry no secret and are
signed, and CAS seals every release to a key inside the quote, so nobody who reads or alters
the traffic gets a secret. CAS is reached over TLS, verified with ``--cas-ca``.

The attestation key is Ed25519. With ``--key-dir`` it is kept there (``attestation.key``, mode
0600) and survives restarts; without, each start makes a new one and enrols it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from enclave_operator.attestation import address
from enclave_operator.attestation import quote as quotes
from enclave_operator.services.las.app import Node, application
from enclave_operator.services.las.enrol import keep_enrolled
from enclave_operator.services.las.tls import CasContexts

log = logging.getLogger("enclave_operator.las")
KEY_FILE = "attestation.key"


@dataclass(frozen=True)
class Settings:
    port: int = address.LAS_PORT
    host: str = "0.0.0.0"
    node: str | None = None
    cas: str | None = None
    cas_ca: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    key_dir: Path | None = None


def attestation_key(key_dir: Path | None) -> ed25519.Ed25519PrivateKey:
    if key_dir is None:
        return ed25519.Ed25519PrivateKey.generate()
    path = key_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 key")
        return key
    key_dir.mkdir(parents=True, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(KEY_FILE + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    os.replace(tmp, path)
    return key


def node_name(given: str | None) -> str:
    """A valid node name: the given one, else this host's name, lowercased."""
    name = (given or socket.gethostname()).lower()
    quotes.check_node(name)
    return name


async def serve(settings: Settings, ready: asyncio.Event | None = None) -> None:
    node = Node(node_name(settings.node), attestation_key(settings.key_dir))
    enrolment: asyncio.Task[None] | None = None
    if settings.cas:
        node.cas = address.url(settings.cas, "https", address.CAS_ENCLAVE_PORT)
        contexts = CasContexts(settings.cas_ca, settings.client_cert, settings.client_key)
        enrolment = asyncio.create_task(keep_enrolled(node, node.cas, contexts))
    else:
        log.warning("no --cas (SCONE_CAS_ADDR): this LAS enrols nowhere; CAS refuses its quotes")
    runner = web.AppRunner(application(node), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        log.info(
            "LAS of node %s on %s:%d (plain HTTP), key %s, CAS %s",
            node.name,
            settings.host,
            settings.port,
            quotes.fingerprint(node.key_id),
            node.cas,
        )
        if ready:
            ready.set()
        await _until_stopped()
    finally:
        if enrolment:
            enrolment.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await enrolment
        await runner.cleanup()
        log.info("stopped")


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
