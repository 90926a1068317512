"""Action 13: a CAS's TLS certificate, due for renewal, is issued again by the CA kept beside
it (``cas-<name>-ca``, which enclavectl install writes), with the same names, for a year.

Clients keep trusting the same CA, and the CAS loads the new certificate from its mounted
Secret without a restart (``services.cas.identity.keep_fresh``): no connection fails. The
update carries the Secret's resourceVersion, so a change made meanwhile is not overwritten.
"""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509

from enclave_operator.pki import reissue
from enclave_operator.reconcile.actions.context import Context, Outcome

RENEWED_VALIDITY = dt.timedelta(days=365)  # as enclavectl install issues it


async def renew_certificate(ctx: Context) -> Outcome:
    base = f"/api/v1/namespaces/{ctx.release_namespace}/secrets/{ctx.release_name}"
    current = await ctx.kube.get(f"{base}-tls")
    ca = await ctx.kube.get(f"{base}-ca")

    def pem(secret: dict[str, object], key: str) -> bytes:
        data = secret.get("data")
        return base64.b64decode(data.get(key, "") if isinstance(data, dict) else "")

    issued = reissue(
        pem(current, "tls.crt"), pem(ca, "tls.crt"), pem(ca, "tls.key"), RENEWED_VALIDITY
    )
    data = {
        **(current.get("data") or {}),
        "tls.crt": base64.b64encode(issued.cert).decode(),
        "tls.key": base64.b64encode(issued.key).decode(),
    }
    # an update (the operator may update Secrets, as helm's records need), not a patch
    await ctx.kube.request("PUT", f"{base}-tls", {**current, "data": data})
    until = x509.load_pem_x509_certificate(issued.cert).not_valid_after_utc
    return Outcome(
        True, f"renewed the certificate in Secret {ctx.release_name}-tls: valid until {until}"
    )
