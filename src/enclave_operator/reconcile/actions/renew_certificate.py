"""Action 13: a CAS's TLS certificate, or the operator's client certificate for it, due for
renewal, is issued again by the CA kept beside it (``cas-<name>-ca``, which enclavectl install
writes), with the same names and usage, for a year.

Clients keep trusting the same CA, and the CAS loads the new certificate from its mounted
Secret without a restart (``services.cas.identity.keep_fresh``): no connection fails. The
operator reads its client Secret on each use. Each update carries the Secret's
resourceVersion, so a change made meanwhile is not overwritten. The client certificate is
renewed only when its Secret names this CA (enclavectl install issues it from the CAS's).
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography import x509

from enclave_operator.charts.values import client_secrets
from enclave_operator.figures.certificate import WARN_BEFORE
from enclave_operator.kube import ApiException
from enclave_operator.pki import reissue
from enclave_operator.reconcile.actions.context import Context, Outcome

RENEWED_VALIDITY = dt.timedelta(days=365)  # as enclavectl install issues it


def _pem(secret: dict[str, Any], key: str) -> bytes:
    data = secret.get("data")
    return base64.b64decode(data.get(key, "") if isinstance(data, dict) else "")


def _due(secret: dict[str, Any], now: dt.datetime) -> bool:
    """tls.crt expires within the warning (an unreadable one is not renewed: its names are
    unknown)."""
    try:
        cert = x509.load_pem_x509_certificate(_pem(secret, "tls.crt"))
    except ValueError:
        return False
    return (cert.not_valid_after_utc - now).total_seconds() <= WARN_BEFORE


async def renew_certificate(ctx: Context) -> Outcome:
    secrets = f"/api/v1/namespaces/{ctx.release_namespace}/secrets"
    ca = await ctx.kube.get(f"{secrets}/{ctx.release_name}-ca")
    clients = [name for name, _ in client_secrets(str(ctx.cr["metadata"]["name"]))]
    names = [f"{ctx.release_name}-tls", *clients]
    now = dt.datetime.now(dt.UTC)
    done = []
    for name in names:
        try:
            current = await ctx.kube.get(f"{secrets}/{name}")
        except ApiException as e:
            if e.status == 404:  # a CAS serving its own self-signed certificate has none
                continue
            raise
        client = name in clients
        if not _due(current, now) or (client and _pem(current, "ca.crt") != _pem(ca, "ca.crt")):
            continue  # not due, or a client certificate from another CAS's CA
        issued = reissue(
            _pem(current, "tls.crt"), _pem(ca, "tls.crt"), _pem(ca, "tls.key"), RENEWED_VALIDITY
        )
        data = {
            **(current.get("data") or {}),
            "tls.crt": base64.b64encode(issued.cert).decode(),
            "tls.key": base64.b64encode(issued.key).decode(),
        }
        # an update (the operator may update Secrets, as helm's records need), not a patch
        await ctx.kube.request("PUT", f"{secrets}/{name}", {**current, "data": data})
        until = x509.load_pem_x509_certificate(issued.cert).not_valid_after_utc
        done.append(f"Secret {name}: valid until {until}")
    if not done:
        return Outcome(True, "no certificate was due any more")
    return Outcome(True, f"renewed the certificate in {'; '.join(done)}")
