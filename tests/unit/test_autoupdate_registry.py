"""The registry client against a small distribution-API server on loopback (TLS): Bearer
tokens from the realm the challenge names, Link pagination, and what each failure is called.
The dev cluster's docker-registry (basic auth) is exercised in the integration tests."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from enclave_operator.autoupdate.reference import Reference
from enclave_operator.autoupdate.registry import (
    CredentialsRefused,
    RegistryError,
    Unreachable,
    challenge,
    list_tags,
)
from enclave_operator.devcluster.processes import free_port
from enclave_operator.pki import Authority

TAGS = [f"0.{i}.0" for i in range(5)]
GOOD = base64.b64encode(b"puller:pw").decode()


def app(state: dict[str, int]) -> web.Application:
    async def token(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Basic {GOOD}":
            return web.Response(status=401)
        assert request.query["scope"] == "repository:team/app:pull"
        assert request.query["service"] == "reg"
        return web.json_response({"token": "t0k"})

    async def tags(request: web.Request) -> web.Response:
        state["calls"] = state.get("calls", 0) + 1
        if request.match_info["repo"] == "team/broken":
            return web.Response(status=503)
        if request.match_info["repo"] != "team/app":
            return web.Response(status=404)
        if request.headers.get("Authorization") != "Bearer t0k":
            realm = f"https://127.0.0.1:{request.url.port}/token"
            header = f'Bearer realm="{realm}",service="reg",scope="repository:team/app:pull"'
            return web.Response(status=401, headers={"WWW-Authenticate": header})
        last = request.query.get("last")
        start = TAGS.index(last) + 1 if last else 0
        page = TAGS[start : start + 2]
        headers = {}
        if start + 2 < len(TAGS):
            headers["Link"] = f'</v2/team/app/tags/list?n=2&last={page[-1]}>; rel="next"'
        return web.json_response({"name": "team/app", "tags": page}, headers=headers)

    application = web.Application()
    application.router.add_get("/token", token)
    application.router.add_get("/v2/{repo:.+}/tags/list", tags)
    return application


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext, dict[str, int]]]:
    authority = Authority("test-ca", dt.timedelta(days=1))
    issued = authority.issue("127.0.0.1", hosts=["127.0.0.1"])
    (tmp_path / "c.pem").write_bytes(issued.cert)
    (tmp_path / "k.pem").write_bytes(issued.key)
    serving = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    serving.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    trust = ssl.create_default_context(cadata=authority.cert.decode())
    state: dict[str, int] = {}
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app(state))
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port, ssl_context=serving).start())
    asyncio.set_event_loop(loop)
    yield f"127.0.0.1:{port}", trust, state
    loop.run_until_complete(runner.cleanup())
    loop.close()
    asyncio.set_event_loop(None)


def run(coro):
    return asyncio.get_event_loop().run_until_complete(coro)


def test_bearer_token_and_every_page(server):
    host, trust, _ = server
    tags = run(list_tags(Reference(host, "team/app", "0.1.0"), ("puller", "pw"), trust))
    assert tags == TAGS


def test_refusals_and_failures_are_told_apart(server):
    host, trust, state = server
    with pytest.raises(CredentialsRefused, match="token service refused"):
        run(list_tags(Reference(host, "team/app", "0"), ("puller", "wrong"), trust))
    with pytest.raises(RegistryError, match="no repository team/other"):
        run(list_tags(Reference(host, "team/other", "0"), None, trust))
    with pytest.raises(Unreachable, match="answered 503"):
        run(list_tags(Reference(host, "team/broken", "0"), None, trust))
    with pytest.raises(Unreachable, match="unreachable"):  # not our CA
        run(list_tags(Reference(host, "team/app", "0"), None, ssl.create_default_context()))
    closed = f"127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable, match="unreachable"):
        run(list_tags(Reference(closed, "team/app", "0"), None, trust))
    assert state["calls"] >= 3


def test_challenge_parameters():
    assert challenge('Bearer realm="https://a/t",service="s",scope="repository:x:pull"') == (
        "bearer",
        {"realm": "https://a/t", "service": "s", "scope": "repository:x:pull"},
    )
    assert challenge('Basic realm="r"') == ("basic", {"realm": "r"})
