"""``enclavectl enclave run``: measure, get a quote from LAS, present it to CAS, open the
release, check the command, exec.

Every refusal is an ``Refusal`` with one clear line for people; none holds a secret (CAS's
messages never do, and the release is only ever opened in this process's memory).
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from cryptography.hazmat.primitives.asymmetric import x25519

from enclave_operator.attestation import address, measurement, release
from enclave_operator.policies.client import tls_context
from enclave_operator.runtime import client


class Refusal(Exception):
    """The workload is not started; the message says why."""


@dataclass(frozen=True)
class Request:
    argv: tuple[str, ...]
    config_id: str | None
    las: str | None
    cas: str | None
    cas_ca: Path | None = None
    timeout: float = 10.0


def _urls(req: Request) -> tuple[str, str, str]:
    if not req.config_id:
        raise Refusal("no config id: pass --config-id or set SCONE_CONFIG_ID (policy/service)")
    if not req.las:
        raise Refusal("SCONE_LAS_ADDR is not set (the node's LAS: status.hostIP[:18766])")
    if not req.cas:
        raise Refusal("SCONE_CAS_ADDR is not set (CAS's enclave port: host[:18765])")
    try:
        release.config_id(req.config_id)
        las = address.url(req.las, "http", address.LAS_PORT)
        cas = address.url(req.cas, "https", address.CAS_ENCLAVE_PORT)
    except ValueError as e:
        raise Refusal(str(e)) from e
    return req.config_id, las, cas


def program_of(argv: Sequence[str]) -> tuple[Path, str]:
    """The resolved program and its measurement."""
    if not argv:
        raise Refusal("no command given: enclavectl enclave run -- CMD ARGS…")
    try:
        program = measurement.resolve(argv[0])
        return program, measurement.measure(program, argv[1:])
    except measurement.ProgramError as e:
        raise Refusal(str(e)) from e


def check_command(granted: Sequence[str], program: Path, argv: Sequence[str]) -> None:
    """The policy's command must name the same program file and the same arguments."""
    if not granted:
        raise Refusal("the policy grants no command")
    if list(granted[1:]) != list(argv[1:]):
        raise Refusal("the arguments differ from the command the policy grants this service")
    try:
        expected = measurement.resolve(granted[0])
    except measurement.ProgramError as e:
        raise Refusal(f"the policy's command does not resolve here: {e}") from e
    if expected != program:
        raise Refusal(f"{program} is not the policy's command ({expected})")


async def attest(req: Request) -> tuple[Path, release.Release]:
    config, las_url, cas_url = _urls(req)
    program, measured = program_of(req.argv)
    key = x25519.X25519PrivateKey.generate()
    report = base64.b64encode(release.raw_public(key.public_key())).decode()
    try:
        context = tls_context(req.cas_ca)
    except (OSError, ValueError) as e:
        raise Refusal(f"CA file {req.cas_ca} (SCONE_CAS_CA) cannot be used: {e}") from e
    async with client.session(context, req.timeout) as http:
        try:
            q = await client.quote(http, las_url, measured, report)
        except client.Refused as e:
            raise Refusal(f"LAS refused a quote: {e.message}") from e
        except client.Unreachable as e:
            raise Refusal(str(e)) from e
        try:
            sealed = await client.attest(http, cas_url, config, q)
        except client.Refused as e:
            raise Refusal(f"CAS refused attestation as {config}: {e.message}") from e
        except client.Unreachable as e:
            raise Refusal(str(e)) from e
    try:
        granted = release.open_sealed(sealed, key, config)
    except release.ReleaseError as e:
        raise Refusal(str(e)) from e
    check_command(granted.command, program, req.argv)
    return program, granted


def environment(base: Mapping[str, str], granted: release.Release) -> dict[str, str]:
    """The process's environment, then the policy's, then the secrets (which win)."""
    return {**base, **granted.environment, **granted.secrets}


def run(req: Request) -> NoReturn:
    program, granted = asyncio.run(attest(req))
    os.execve(program, list(req.argv), environment(os.environ, granted))
