"""TLS material for talking to a CAS: which CA to trust and which client certificate to show.

Read from Secrets on each use (policies are registered rarely), turned into SSL contexts that
are cached by content, so a renewed Secret takes effect on the next pass without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import ssl

from enclave_operator.kube import ApiException, Kube
from enclave_operator.pki import OPERATOR_CLIENT_SECRET, load_chain
from enclave_operator.policies.client import tls_context
from enclave_operator.policies.controller.address import Target

CLIENT_SECRET = OPERATOR_CLIENT_SECRET


class TrustError(Exception):
    """No CA to verify the CAS with; the message says which Secret to create."""


def cas_tls_secret(cas_name: str) -> str:
    return f"cas-{cas_name}-tls"


class Trust:
    def __init__(self, kube: Kube, operator_namespace: str) -> None:
        self.kube, self.namespace = kube, operator_namespace
        self._contexts: dict[str, ssl.SSLContext] = {}

    async def _secret(self, namespace: str, name: str) -> dict[str, bytes]:
        try:
            secret = await self.kube.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except ApiException as e:
            if e.status == 404:
                return {}
            raise
        data = secret.get("data") or {}
        return {k: base64.b64decode(v) for k, v in data.items()}

    async def context(self, target: Target) -> ssl.SSLContext:
        own = await self._secret(self.namespace, CLIENT_SECRET)
        if target.cas:
            ns, name = target.cas
            ca = (await self._secret(ns, cas_tls_secret(name))).get("ca.crt")
            where = f"ca.crt of Secret {ns}/{cas_tls_secret(name)}"
        else:
            ca = own.get("ca.crt")
            where = f"ca.crt of Secret {self.namespace}/{CLIENT_SECRET}"
        if not ca:
            raise TrustError(f"no CA to verify {target.url}: {where} is missing")
        cert, key = own.get("tls.crt"), own.get("tls.key")
        return self._context(ca, cert, key) if cert and key else self._context(ca, None, None)

    def _context(self, ca: bytes, cert: bytes | None, key: bytes | None) -> ssl.SSLContext:
        digest = hashlib.sha256(ca + b"\0" + (cert or b"") + b"\0" + (key or b"")).hexdigest()
        if (found := self._contexts.get(digest)) is not None:
            return found
        context = tls_context(ca)
        if cert and key:
            load_chain(context, cert, key)
        self._contexts = {digest: context}  # only the newest material is kept
        return context
