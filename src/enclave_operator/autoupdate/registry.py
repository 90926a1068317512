"""Reading a repository's tags through the distribution API (``GET /v2/<name>/tags/list``),
with Basic or Bearer (token) authentication from a pull secret's user and password."""

from __future__ import annotations

import base64
import re
import ssl
from collections.abc import Mapping
from urllib.parse import urljoin

import aiohttp

from enclave_operator.autoupdate.reference import Reference

TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5)
MAX_PAGES = 50  # 50 pages of 1000 tags: a bound, not a limit anyone should meet
_PARAM = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(Exception):
    """The registry answered, but not with the tags: refused, no such repository."""


class Unreachable(RegistryError):
    """No answer (connection, TLS, timeout) or a 5xx: worth retrying later."""


class CredentialsRefused(RegistryError):
    """401/403 although (or because no) credentials were sent."""


def challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="…",service="…"`` → ("bearer", {realm, service, …})."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


async def list_tags(
    ref: Reference,
    auth: tuple[str, str] | None,
    ssl_context: ssl.SSLContext | None = None,
) -> list[str]:
    """Every tag of ``ref.repository`` on ``ref.host`` (https), following Link pagination."""
    base = f"https://{ref.host}"
    url: str | None = f"{base}/v2/{ref.repository}/tags/list?n=1000"
    tags: list[str] = []
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True)
    try:
        async with aiohttp.ClientSession(timeout=TIMEOUT, connector=connector) as session:
            header: str | None = None
            for _ in range(MAX_PAGES):
                if url is None:
                    break
                status, body, headers = await _get(session, url, header)
                if status == 401:
                    header = await _authorize(session, ref, auth, headers)
                    status, body, headers = await _get(session, url, header)
                _check(status, ref, auth)
                page = body.get("tags") if isinstance(body, Mapping) else None
                tags.extend(str(t) for t in page or [])
                url = _next(base, headers.get("Link"))
    except (TimeoutError, aiohttp.ClientError, ssl.SSLError, OSError) as e:
        raise Unreachable(f"registry {ref.host} unreachable: {_say(e)}") from e
    return tags


def _say(e: BaseException) -> str:
    return str(e) or type(e).__name__


async def _get(
    session: aiohttp.ClientSession, url: str, header: str | None
) -> tuple[int, object, Mapping[str, str]]:
    headers = {"Accept": "application/json", **({"Authorization": header} if header else {})}
    async with session.get(url, headers=headers) as resp:
        body: object = None
        if resp.status == 200:
            body = await resp.json(content_type=None)
        return resp.status, body, resp.headers


async def _authorize(
    session: aiohttp.ClientSession,
    ref: Reference,
    auth: tuple[str, str] | None,
    headers: Mapping[str, str],
) -> str | None:
    scheme, params = challenge(headers.get("WWW-Authenticate", ""))
    basic = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode() if auth else None
    if scheme == "basic":
        return basic
    if scheme != "bearer" or "realm" not in params:
        return None
    query = {"scope": f"repository:{ref.repository}:pull"}
    if "service" in params:
        query["service"] = params["service"]
    sent = {"Authorization": basic} if basic else {}
    async with session.get(params["realm"], params=query, headers=sent) as resp:
        if resp.status in (401, 403):
            raise CredentialsRefused(f"token service refused the credentials ({resp.status})")
        if resp.status >= 500:
            raise Unreachable(f"token service of {ref.host} answered {resp.status}")
        if resp.status != 200:
            raise RegistryError(f"token service of {ref.host} answered {resp.status}")
        doc = await resp.json(content_type=None)
    token = doc.get("token") or doc.get("access_token") if isinstance(doc, Mapping) else None
    return f"Bearer {token}" if token else None


def _check(status: int, ref: Reference, auth: tuple[str, str] | None) -> None:
    if status == 200:
        return
    if status in (401, 403):
        sent = "refused the credentials" if auth else "needs credentials (no pull secret for it)"
        raise CredentialsRefused(f"registry {ref.host} {sent} ({status})")
    if status == 404:
        raise RegistryError(f"registry {ref.host} has no repository {ref.repository}")
    if status >= 500:
        raise Unreachable(f"registry {ref.host} answered {status}")
    raise RegistryError(f"registry {ref.host} answered {status}")


def _next(base: str, link: str | None) -> str | None:
    """``Link: </v2/…?last=x&n=1000>; rel="next"`` → the next page's URL."""
    if not link or 'rel="next"' not in link:
        return None
    target = link.split(";", 1)[0].strip().strip("<>")
    return urljoin(base, target)
