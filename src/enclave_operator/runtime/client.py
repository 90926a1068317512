"""The runtime's two requests: a quote from the node's LAS (plain HTTP) and an attestation at
CAS's enclave port (HTTPS, verified). ``Unreachable``: no usable answer; ``Refused``: the
service's own reason (a 4xx)."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from enclave_operator.policies.client import Refused, Unreachable, call_json

__all__ = ["Refused", "Unreachable", "post", "session"]


def session(context: ssl.SSLContext, timeout: float) -> aiohttp.ClientSession:
    """One session for both: ``context`` applies to https URLs (CAS) only."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=context),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


async def post(
    http: aiohttp.ClientSession, url: str, body: dict[str, Any], who: str
) -> dict[str, Any]:
    return await call_json(http, "POST", url, body, who=f"{who} at {url}")


async def quote(
    http: aiohttp.ClientSession, las_url: str, measurement: str, report_data: str
) -> dict[str, Any]:
    body = {"measurement": measurement, "reportData": report_data}
    answer = await post(http, f"{las_url}/v1/quote", body, "LAS")
    q = answer.get("quote")
    if not isinstance(q, dict):
        raise Unreachable(f"LAS at {las_url}: answer without a quote")
    return q


async def attest(
    http: aiohttp.ClientSession, cas_url: str, config_id: str, q: dict[str, Any]
) -> str:
    """The sealed release (base64) CAS answers with."""
    answer = await post(http, f"{cas_url}/v1/attest", {"configId": config_id, "quote": q}, "CAS")
    sealed = answer.get("sealed")
    if not isinstance(sealed, str):
        raise Unreachable(f"CAS at {cas_url}: answer without a sealed release")
    return sealed
