"""LAS enrols its attestation key with CAS's enclave port, retrying until CAS answers.

Each attempt posts ``{key, node, timestamp, proof}`` to ``/v1/las/enrol`` over verified TLS,
with the LAS's client certificate when one is configured. Failures back off from 0.25 s,
doubling to at most ``MAX_DELAY``; after a success LAS enrols again every ``RENEW`` seconds
(idempotent), so a CAS that restarted on an empty store learns the key again by itself.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from enclave_operator.attestation import quote as quotes
from enclave_operator.policies.client import Refused, Unreachable, call_json
from enclave_operator.services.las.app import Node

log = logging.getLogger("enclave_operator.las.enrol")
FIRST_DELAY = 0.25
MAX_DELAY = 15.0
RENEW = 30.0


class EnrolmentFailed(Exception):
    """One attempt failed; the message says why (no answer, or CAS's reason)."""

    def __init__(self, message: str, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def request_body(node: Node, now: float | None = None) -> dict[str, Any]:
    stamp = int(time.time() if now is None else now)
    proof = node.key.sign(quotes.enrolment_message(node.key_id, node.name, stamp))
    return {
        "key": node.key_id,
        "node": node.name,
        "timestamp": stamp,
        "proof": base64.b64encode(proof).decode(),
    }


async def enrol_once(session: aiohttp.ClientSession, cas_url: str, node: Node) -> dict[str, Any]:
    who = f"CAS at {cas_url}"
    try:
        return await call_json(
            session, "POST", f"{cas_url}/v1/las/enrol", request_body(node), who=who
        )
    except Unreachable as e:
        raise EnrolmentFailed(str(e)) from e
    except Refused as e:
        raise EnrolmentFailed(f"{who} answered HTTP {e.status}: {e.message}", True) from e


async def keep_enrolled(node: Node, cas_url: str, contexts: Callable[[], ssl.SSLContext]) -> None:
    """Runs until cancelled: enrol, retry with backoff, renew. ``contexts()`` is asked before
    each attempt; a new context (its files changed) gets a new connection pool."""
    delay = FIRST_DELAY
    timeout = aiohttp.ClientTimeout(total=10)
    session: aiohttp.ClientSession | None = None
    current: ssl.SSLContext | None = None
    said = ""
    try:
        while True:
            if (context := contexts()) is not current or session is None:
                if session is not None:
                    await session.close()
                connector = aiohttp.TCPConnector(ssl=context)
                session, current = (
                    aiohttp.ClientSession(connector=connector, timeout=timeout),
                    context,
                )
            try:
                answer = await enrol_once(session, cas_url, node)
            except EnrolmentFailed as e:
                if str(e) != node.last_error:
                    log.warning("%s; retrying with backoff", e)
                node.last_error = str(e)
                if e.refused:  # CAS's decision about this key, not a missing answer
                    node.enrolled = False
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, MAX_DELAY)
                continue
            instance = str(answer.get("instanceId"))
            how = "authenticated" if answer.get("authenticated") else "unauthenticated"
            if not node.enrolled or instance != node.cas_instance or how != said:
                said = how
                log.info(
                    "enrolled key %s with CAS %s (instance %s, %s)",
                    quotes.fingerprint(node.key_id),
                    cas_url,
                    instance,
                    how,
                )
            node.enrolled, node.cas_instance, node.last_error = True, instance, None
            delay = FIRST_DELAY
            await asyncio.sleep(RENEW)
    finally:
        if session is not None:
            await session.close()
