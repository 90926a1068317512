"""Addresses of LAS and CAS as workloads get them (``SCONE_LAS_ADDR``, ``SCONE_CAS_ADDR``):
``host``, ``host:port``, ``[v6]:port`` or a URL, with each service's default port."""

from __future__ import annotations

from urllib.parse import urlsplit

LAS_PORT = 18766
CAS_ENCLAVE_PORT = 18765


def url(address: str, scheme: str, default_port: int) -> str:
    """``scheme://host:port``; ValueError names the address and what is expected."""
    text = address.strip()
    if not text:
        raise ValueError("empty address")
    if "://" not in text:
        text = f"{scheme}://{text}"
    parts = urlsplit(text)
    if parts.scheme != scheme:
        raise ValueError(f"{address!r}: expected {scheme}:// (or no scheme)")
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ValueError(f"{address!r}: expected host[:port]")
    try:
        port = parts.port or default_port
    except ValueError as e:
        raise ValueError(f"{address!r}: {e}") from e
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{scheme}://{host}:{port}"
