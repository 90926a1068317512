"""The TLS context LAS enrols with, made again whenever one of its files changes.

Kubernetes updates a mounted Secret in place: a client certificate the operator renewed, or a
CAS CA (or client certificate) that was created after LAS started, reaches LAS at its next
enrolment (every 30 s at most) without a restart. A file is known by inode, size and
modification time, read through the volume's symlinks.
"""

from __future__ import annotations

import logging
import os
import ssl
from pathlib import Path

from enclave_operator.policies.client import tls_context

log = logging.getLogger("enclave_operator.las")
Stamp = tuple[int, int, int] | None


def _stamp(path: Path | None) -> Stamp:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


class CasContexts:
    """Calling it gives the current context: the same object until a file changes."""

    def __init__(self, ca: Path | None, cert: Path | None, key: Path | None) -> None:
        self.ca, self.cert, self.key = ca, cert, key
        self._stamps: tuple[Stamp, ...] | None = None
        self._context: ssl.SSLContext | None = None

    def __call__(self) -> ssl.SSLContext:
        stamps = tuple(_stamp(p) for p in (self.ca, self.cert, self.key))
        if self._context is None or stamps != self._stamps:
            self._context = self._make(stamps)
            self._stamps = stamps
        return self._context

    def _make(self, stamps: tuple[Stamp, ...]) -> ssl.SSLContext:
        ca_at, cert_at, key_at = stamps
        if self.cert is None or self.key is None:
            return self._verifying(ca_at)
        if cert_at is None or key_at is None:
            log.warning("client certificate %s not found: enrolling without", self.cert)
            return self._verifying(ca_at)
        context = self._verifying(ca_at)
        try:
            context.load_cert_chain(str(self.cert), str(self.key))
        except (OSError, ssl.SSLError) as e:  # a fresh context: nothing half-loaded stays
            log.warning("client certificate %s unusable (%s): enrolling without", self.cert, e)
            return self._verifying(ca_at)
        log.info("enrolling with client certificate %s", self.cert)
        return context

    def _verifying(self, ca_at: Stamp) -> ssl.SSLContext:
        """A context that verifies CAS with the CA file, else the system's CAs."""
        if self.ca is not None and ca_at is None:
            log.warning("CA file %s does not exist: CAS is verified with the system's CAs", self.ca)
        elif self.ca is not None:
            try:
                return tls_context(self.ca)
            except (OSError, ssl.SSLError) as e:
                log.warning("CA file %s unusable (%s): CAS is verified with the system's CAs",
                            self.ca, e)  # fmt: skip
        return tls_context(None)
