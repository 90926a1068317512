"""A CAS's TLS certificate in its figures: when it expires, whether that is near, and when the
answer changes (nothing else happens at that moment, so the caller looks again then)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from enclave_operator.figures.compute import Figures

WARN_BEFORE = 30 * 86400.0
"""Seconds before expiry from which the certificate counts as expiring (a third of the
30-day certificates the webhook uses, a month of the CAS's one-year ones)."""
UNREADABLE = -1.0
RENEWABLE_REASON = "Renewing"
"""CertificateValid's reason when the certificate is due and its CA is at hand."""


@dataclass(frozen=True)
class CertificateFigures:
    status: dict[str, str]  # merged into the CR's status
    condition: tuple[str, str, str] | None  # CertificateValid: (status, reason, message)
    alert: str | None  # expired: the CAS cannot be reached with verified TLS
    recheck_at: float | None


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_figures(
    secret: str, not_after: float | None, now: float, ca_not_after: float | None = None
) -> CertificateFigures:
    """``not_after``: the expiry of tls.crt in ``secret`` (unix time), None without the
    Secret (the CAS then serves a self-signed certificate of its own), UNREADABLE.
    ``ca_not_after``: the expiry of the CA kept beside it (enclavectl install keeps it), None
    without one. With a CA that outlives the warning, a certificate due is reported as
    Renewing: the operator renews it (RENEWABLE_REASON), clients keep trusting that CA."""
    if not_after is None:
        return CertificateFigures({}, None, None, None)
    if not_after == UNREADABLE:
        message = f"tls.crt of Secret {secret} is not a PEM certificate"
        return CertificateFigures({}, ("False", "Unreadable", message), None, None)
    when = _iso(not_after)
    left = not_after - now
    status = {"certificateNotAfter": when}
    days = f"{left / 86400:.0f} days"
    if left <= WARN_BEFORE and ca_not_after is not None and ca_not_after - now > 2 * WARN_BEFORE:
        message = f"tls.crt of Secret {secret} expires at {when}, in {days}: renewing it"
        return CertificateFigures(
            status,
            ("False", RENEWABLE_REASON, message),
            f"certificate expired at {when}" if left <= 0 else None,
            not_after if left > 0 else None,
        )
    if left <= 0:
        message = f"tls.crt of Secret {secret} expired at {when}: renew it"
        return CertificateFigures(
            status, ("False", "Expired", message), f"certificate expired at {when}", None
        )
    if left <= WARN_BEFORE:
        message = f"tls.crt of Secret {secret} expires at {when}, in {days}: renew it"
        return CertificateFigures(status, ("False", "ExpiresSoon", message), None, not_after)
    message = f"tls.crt of Secret {secret} is valid until {when} ({days})"
    return CertificateFigures(status, ("True", "Valid", message), None, not_after - WARN_BEFORE)


WORSE = {"Valid": 0, "ExpiresSoon": 1, "Unreadable": 2, "Expired": 3, RENEWABLE_REASON: 4}
"""Which reason CertificateValid takes when two certificates have one each: Renewing first
(the operator acts on it), else the worst."""


def with_client(
    serving: CertificateFigures, client: CertificateFigures, who: str = "operator client"
) -> CertificateFigures:
    """The CAS's certificate and a client certificate from the same CA (the operator's, a
    LAS's), as one CertificateValid: the status field stays the serving certificate's; a
    certificate that is not valid is named in the message, each when several are not."""
    if client.condition is None:
        return serving
    if serving.condition is None:
        return replace(client, status={}, alert=f"{who} {client.alert}" if client.alert else None)
    conditions = (serving.condition, client.condition)
    worst = max(conditions, key=lambda c: WORSE.get(c[1], 2))
    if worst[1] == "Valid":
        message = serving.condition[2]
    else:
        message = "; ".join(c[2] for c in conditions if c[1] != "Valid")
    moments = [t for t in (serving.recheck_at, client.recheck_at) if t is not None]
    return CertificateFigures(
        serving.status,
        (worst[0], worst[1], message),
        serving.alert or (f"{who} {client.alert}" if client.alert else None),
        min(moments, default=None),
    )


def with_certificate(figures: Figures, cert: CertificateFigures) -> Figures:
    """The CAS's figures with its certificate's: the status field, the CertificateValid
    condition, the alert when expired, and the earlier of the two moments to look again."""
    moments = [t for t in (figures.recheck_at, cert.recheck_at) if t is not None]
    condition = (("CertificateValid", *cert.condition),) if cert.condition else ()
    return replace(
        figures,
        status={**figures.status, **cert.status},
        alerts=(*figures.alerts, *((cert.alert,) if cert.alert else ())),
        recheck_at=min(moments, default=None),
        conditions=(*figures.conditions, *condition),
    )
