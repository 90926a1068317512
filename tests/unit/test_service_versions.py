"""status.version of a CAS or LAS comes from the running service: asked once per ready pod, over TLS
verified with the CAS's own CA for its Service name."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

from enclave_operator import __version__
from enclave_operator.controller.versions import ServiceVersions
from enclave_operator.figures.cluster import PodView
from enclave_operator.kube import ApiException
from tests.support.cas_process import CASProcess, Certificates
from tests.support.las_process import LASProcess


class Secrets:
    """Answers the one Secret read the prober makes (the CAS's TLS Secret)."""

    def __init__(self, ca: Path | None) -> None:
        self.ca = ca
        self.paths: list[str] = []

    async def get(self, path: str):
        self.paths.append(path)
        if self.ca is None:
            raise ApiException(status=404)
        return {"data": {"ca.crt": base64.b64encode(self.ca.read_bytes()).decode()}}


def pod(uid: str, ip: str = "127.0.0.1", ready: bool = True) -> PodView:
    return PodView("ns", f"cas-{uid}", "n1", ready, "", "", "img:9.9", False, {}, 0.0, uid, ip)


async def ask(versions: ServiceVersions, port: int, pods: list[PodView], seen: list[object]):
    versions.cas("key", "cas-x", "ns", port, pods)
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.05)
    return versions.cas("key", "cas-x", "ns", port, pods)


def test_the_version_a_las_reports(tmp_path):
    las = LASProcess(tmp_path / "las.log")
    las.start()
    try:
        seen: list[object] = []
        versions = ServiceVersions(Secrets(None), seen.append)

        async def run():
            versions.las("las-key", las.port, [pod("l1")])
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.05)
            return versions.las("las-key", las.port, [pod("l1")])

        assert asyncio.run(run()) == {"l1": __version__}
        assert seen == ["las-key"]
    finally:
        las.stop()


def test_the_version_the_service_reports(tmp_path):
    """The test certificate names localhost: the prober must check that name, here the one
    given as the Service's (a wrong name would fail verification)."""
    certs = Certificates.make(tmp_path / "certs")
    cas = CASProcess(tmp_path / "db", certs, tmp_path / "log")
    cas.start()
    try:
        seen: list[object] = []
        secrets = Secrets(certs.ca)
        versions = ServiceVersions(secrets, seen.append)
        import enclave_operator.controller.versions as mod

        real = mod._get_version

        async def as_localhost(base, context, host):
            assert host == "cas-x.ns.svc"
            return await real(base, context, "localhost")

        mod._get_version = as_localhost
        try:
            got = asyncio.run(ask(versions, cas.client_port, [pod("u1")], seen))
        finally:
            mod._get_version = real
        assert got == {"u1": __version__}
        assert seen == ["key"]
        assert secrets.paths == ["/api/v1/namespaces/ns/secrets/cas-x-tls"]
    finally:
        cas.stop()


def test_a_self_signed_cas_is_read_without_its_ca(tmp_path):
    cas = CASProcess(tmp_path / "db", None, tmp_path / "log")
    cas.start()
    try:
        seen: list[object] = []
        versions = ServiceVersions(Secrets(None), seen.append)
        got = asyncio.run(ask(versions, cas.client_port, [pod("u2")], seen))
        assert got == {"u2": __version__}
    finally:
        cas.stop()


def test_pods_not_ready_or_without_address_are_not_asked():
    async def run():
        secrets = Secrets(None)
        versions = ServiceVersions(secrets, lambda _: None)
        got = versions.cas("key", "cas-x", "ns", 1, [pod("a", ready=False), pod("b", ip="")])
        await asyncio.sleep(0)
        return got, secrets.paths

    assert asyncio.run(run()) == ({}, [])


def test_a_self_signed_cas_is_asked_without_loading_the_system_ca_store():
    """Nothing is verified then, and loading the store blocks the event loop for tens of
    milliseconds per pod asked (a hundred CAS pods: seconds)."""
    import ssl

    async def run():
        return await ServiceVersions(Secrets(None), lambda _: None)._context("cas-x", "ns")

    context = asyncio.run(run())
    assert context.verify_mode is ssl.CERT_NONE
    assert not context.check_hostname
    assert context.cert_store_stats()["x509_ca"] == 0


def test_one_resources_pass_keeps_the_versions_of_anothers_pods():
    """A CAS and a LAS share the prober: a pass for one used to forget the other's versions
    (every uid not among its own pods counted as gone), so each was asked again and its
    status.version flapped."""
    seen: list[object] = []
    versions = ServiceVersions(Secrets(None), seen.append)

    async def fetch(p: PodView) -> str:
        return f"v-{p.uid}"

    async def run():
        versions._known("cas", [pod("c1")], fetch)
        versions._known("las", [pod("l1")], fetch)
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        assert versions._known("cas", [pod("c1")], fetch) == {"c1": "v-c1"}
        assert versions._known("las", [pod("l1")], fetch) == {"l1": "v-l1"}
        assert versions._known("cas", [pod("c1")], fetch) == {"c1": "v-c1"}
        await asyncio.sleep(0.05)
        assert sorted(map(str, seen)) == ["cas", "las"], "nobody was asked twice"
        versions._known("cas", [], fetch)  # its pod went
        assert versions._known("las", [pod("l1")], fetch) == {"l1": "v-l1"}
        assert "c1" not in versions.reported

    asyncio.run(run())


def test_a_deleted_resource_stops_its_questions():
    versions = ServiceVersions(Secrets(None), lambda key: None)
    asked: list[str] = []

    async def never(p: PodView) -> str:
        asked.append(p.uid)
        await asyncio.sleep(3600)
        return ""

    async def run():
        versions._known("cas", [pod("c1")], never)
        await asyncio.sleep(0.01)
        versions.forget("cas")
        await asyncio.sleep(0.01)
        assert not versions._tasks
        assert not versions._asked
        assert not versions._pods_of

    asyncio.run(run())
    assert asked == ["c1"]
