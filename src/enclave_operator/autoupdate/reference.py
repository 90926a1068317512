"""Image references and registry credentials, as the kubelet reads them: pure."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DOCKER_HUB = "registry-1.docker.io"
_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Reference:
    """``host[:port]/repository:tag``; ``host`` is where the distribution API answers."""

    host: str
    repository: str
    tag: str

    def with_tag(self, tag: str, original: str) -> str:
        """``original`` with its tag replaced, written as the user wrote it (no added host)."""
        base = original.split("@", 1)[0]
        name, _, old = base.rpartition(":")
        if not name or "/" in old:
            name = base
        return f"{name}:{tag}"


def parse_reference(image: str) -> Reference | None:
    """Docker's rules: the first component is a registry when it has a dot or a port or is
    localhost, else the image is on Docker Hub (``library/`` for one-component names). None
    for a digest reference (``@sha256:…``) or no tag: nothing to compare."""
    if "@" in image:
        return None
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return None
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        host, repository = first, rest
    else:
        host, repository = DOCKER_HUB, name
    if host in _HUB_NAMES:
        host = DOCKER_HUB
        if "/" not in repository:
            repository = f"library/{repository}"
    return Reference(host, repository, tag)


class CredentialsError(ValueError):
    """A pull secret that cannot be read; the message says what is wrong with it."""


def credentials(dockerconfig: Mapping[str, Any], host: str) -> tuple[str, str] | None:
    """User and password for ``host`` from a ``.dockerconfigjson`` document, None when it has
    no entry for that registry. Keys may be a host, a host with a scheme or a path."""
    auths = dockerconfig.get("auths")
    if not isinstance(auths, Mapping):
        raise CredentialsError("no 'auths' object")
    for key, entry in auths.items():
        if _host_of(str(key)) != _host_of(host) or not isinstance(entry, Mapping):
            continue
        if entry.get("username") is not None:
            return str(entry["username"]), str(entry.get("password") or "")
        if entry.get("auth"):
            try:
                decoded = base64.b64decode(str(entry["auth"]), validate=True).decode()
            except (ValueError, UnicodeDecodeError) as e:
                raise CredentialsError(f"auths[{key!r}].auth is not base64 user:password") from e
            user, _, password = decoded.partition(":")
            return user, password
    return None


def _host_of(key: str) -> str:
    bare = key.split("://", 1)[-1].split("/", 1)[0]
    return DOCKER_HUB if bare in _HUB_NAMES else bare


def dockerconfig_of(secret: Mapping[str, Any]) -> dict[str, Any]:
    """The parsed ``.dockerconfigjson`` of a Secret."""
    raw = (secret.get("data") or {}).get(".dockerconfigjson")
    if not raw:
        raise CredentialsError("no .dockerconfigjson key")
    try:
        doc = json.loads(base64.b64decode(raw))
    except ValueError as e:
        raise CredentialsError(".dockerconfigjson is not JSON") from e
    if not isinstance(doc, dict):
        raise CredentialsError(".dockerconfigjson is not a JSON object")
    return doc
