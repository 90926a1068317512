"""The operator's own API client against the API server: a token the server refuses (401) makes
it read its credentials again once, as a rotated service account token needs; a refusal says
the server's message; a watch streams events; a burst of requests shares a bounded pool of
connections, while each watch has a connection of its own."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kopf
import pytest
from kubernetes import client

from enclave_operator.kube import REQUEST_CONNECTIONS, ApiException, Kube, login


def bearer(cluster: Any, api_client: client.ApiClient, namespace: str) -> kopf.ConnectionInfo:
    """A ServiceAccount's token, with the cluster's address and CA: no client certificate."""
    core = client.CoreV1Api(api_client)
    account: Any = {"metadata": {"name": "reader"}}
    core.create_namespaced_service_account(namespace, account)
    rbac = client.RbacAuthorizationV1Api(api_client)
    binding: Any = {
        "metadata": {"name": "reader"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "view",
        },
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
    }
    rbac.create_namespaced_role_binding(namespace, binding)
    request: Any = {"spec": {"audiences": [], "expirationSeconds": 600}}
    token = core.create_namespaced_service_account_token("reader", namespace, request)
    os.environ["KUBECONFIG"] = cluster.kubeconfig
    return dataclasses.replace(
        login(),
        token=token.status.token if token.status else None,
        certificate_path=None,
        certificate_data=None,
        private_key_path=None,
        private_key_data=None,
    )


def test_a_refused_token_is_read_again_once(
    cluster: Any, api_client: client.ApiClient, namespace: str
) -> None:
    good = bearer(cluster, api_client, namespace)
    stale = dataclasses.replace(good, token="not-a-token")
    handed: list[str] = []

    def credentials(tokens: list[kopf.ConnectionInfo]) -> Any:
        def next_one() -> kopf.ConnectionInfo:
            info = tokens[min(len(handed), len(tokens) - 1)]
            handed.append(str(info.token))
            return info

        return next_one

    async def scenario() -> None:
        kube = Kube(credentials([stale, good]))
        try:
            # 401 for the stale token, then the same request again with the one read anew
            body = await kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/reader")
            assert body["metadata"]["name"] == "reader"
            assert handed == ["not-a-token", good.token]
            await kube.get(f"/api/v1/namespaces/{namespace}/serviceaccounts/reader")
            assert len(handed) == 2  # no 401, no further reading
        finally:
            await kube.close()
        handed.clear()
        refused = Kube(credentials([stale]))
        try:
            with pytest.raises(ApiException) as caught:  # read again once, then given up
                await refused.get(f"/api/v1/namespaces/{namespace}")
            assert caught.value.status == 401
            assert handed == ["not-a-token", "not-a-token"]
        finally:
            await refused.close()

    asyncio.run(scenario())


def test_a_refusal_says_the_servers_message(cluster: Any, namespace: str) -> None:
    async def scenario() -> None:
        kube = await Kube.connect(cluster.kubeconfig)
        try:
            path = f"/api/v1/namespaces/{namespace}/configmaps"
            made = await kube.create(path, {"metadata": {"name": "c"}, "data": {"a": "1"}})
            with pytest.raises(ApiException) as conflict:
                await kube.create(path, {"metadata": {"name": "c"}})
            assert conflict.value.status == 409
            assert 'configmaps "c" already exists' in str(conflict.value)
            stale = {"metadata": {"resourceVersion": "1"}, "data": {"a": "2"}}
            with pytest.raises(ApiException) as stale_write:
                await kube.merge_patch(f"{path}/c", stale)
            assert stale_write.value.status == 409
            version = made["metadata"]["resourceVersion"]
            patched = await kube.merge_patch(
                f"{path}/c", {"metadata": {"resourceVersion": version}, "data": {"a": "2"}}
            )
            assert patched["data"] == {"a": "2"}
            with pytest.raises(ApiException) as missing:
                await kube.get(f"{path}/nothing")
            assert missing.value.status == 404
        finally:
            await kube.close()

    asyncio.run(scenario())


def test_a_watch_streams_events(cluster: Any, namespace: str) -> None:
    async def scenario() -> list[str]:
        kube = await Kube.connect(cluster.kubeconfig)
        try:
            path = f"/api/v1/namespaces/{namespace}/configmaps"
            listed = await kube.get(path)
            version = listed["metadata"]["resourceVersion"]
            seen: list[str] = []
            url = f"{path}?watch=1&resourceVersion={version}&timeoutSeconds=30"
            async with kube.stream(url, read_timeout=60) as lines:
                await kube.create(path, {"metadata": {"name": "w"}})
                while len(seen) < 1 and (line := await lines.readline()):
                    event = json.loads(line)
                    seen.append(f"{event['type']} {event['object']['metadata']['name']}")
            return seen
        finally:
            await kube.close()

    assert asyncio.run(scenario()) == ["ADDED w"]


def established(port: int) -> int:
    """This process's established TCP connections to ``port`` (from /proc: its socket inodes
    matched with the kernel's connection tables)."""
    mine = set()
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            if (target := os.readlink(fd)).startswith("socket:["):
                mine.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            cols = row.split()
            if cols[3] == "01" and int(cols[2].rsplit(":", 1)[1], 16) == port and cols[9] in mine:
                count += 1
    return count


def test_requests_share_a_bounded_pool_and_each_watch_has_its_own(
    cluster: Any, namespace: str
) -> None:
    watches = REQUEST_CONNECTIONS + 2  # more than the request pool holds

    async def scenario(port: int) -> tuple[int, int]:
        kube = await Kube.connect(cluster.kubeconfig)
        before = established(port)
        try:
            path = f"/api/v1/namespaces/{namespace}/configmaps"
            version = (await kube.get(path))["metadata"]["resourceVersion"]
            url = f"{path}?watch=1&resourceVersion={version}&timeoutSeconds=60"
            async with contextlib.AsyncExitStack() as open_watches:
                for _ in range(watches):
                    await open_watches.enter_async_context(kube.stream(url, read_timeout=90))
                with_watches = established(port) - before
                burst = [kube.get(path) for _ in range(3 * REQUEST_CONNECTIONS)]
                await asyncio.wait_for(asyncio.gather(*burst), 60)  # not blocked by watches
                return with_watches, established(port) - before
        finally:
            await kube.close()

    port = urlsplit(login_server(cluster)).port or 443
    with_watches, after_burst = asyncio.run(scenario(port))
    assert with_watches >= watches
    # the pool's connections (the first GET's among them) stay open for reuse: no more than
    # its bound however many requests came at once
    assert watches < after_burst <= watches + REQUEST_CONNECTIONS, (with_watches, after_burst)


def login_server(cluster: Any) -> str:
    os.environ["KUBECONFIG"] = cluster.kubeconfig
    return str(login().server)
