"""benchmarks/attest: attestations per second end to end against a CAS and a LAS process on
loopback: each one makes a release key, gets a quote from LAS (HTTP), presents it to CAS
(keep-alive TLS), which verifies it and seals the grant, and opens the release.

    .venv/bin/python -m benchmarks.attest [--count 3000] [--clients 8] [--max-seconds 60]
                                          [--cli-runs 5]

Prints attestations/s, p50/p99 latency, the CPU each process spent per attestation, and the
bare Ed25519 verification rate of `cryptography` over a quote's signed bytes measured in the
same run (CAS verifies one signature per attestation; the ratio says what the rest costs).
``--cli-runs`` also times whole `enclavectl enclave run -- /bin/true` processes (interpreter
start, imports, attestation, exec). Bounded by --count and --max-seconds; it stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from tests.support.cas_process import CASProcess, Certificates
from tests.support.las_process import LASProcess, enclave_run, policy_text

from benchmarks.cas import cpu_seconds
from enclave_operator.attestation import quote as quotes
from enclave_operator.attestation import release
from enclave_operator.attestation.measurement import measure, resolve
from enclave_operator.policies import signing
from enclave_operator.policies.client import CASClient, tls_context
from enclave_operator.runtime import client

CONFIG = "bench/app"
PROGRAM = "/bin/true"


async def register(cas: CASProcess, ca: Path, measurement: str) -> None:
    text = policy_text("bench", measurement, [PROGRAM], "bench-secret-value")
    sig = signing.sign(text.encode(), signing.generate())
    async with CASClient(cas.address, tls_context(ca)) as c:
        await c.register_signed(text, [sig.as_dict()])


async def load(
    las_url: str, cas_url: str, ca: Path, measurement: str, count: int, clients: int, limit: float
) -> tuple[list[float], float, int]:
    """``clients`` workers, each a full attestation at a time, until count or the deadline."""
    latencies: list[float] = []
    failures = 0
    remaining = iter(range(count))
    deadline = time.monotonic() + limit
    async with client.session(tls_context(ca), 30) as http:

        async def one() -> None:
            key = x25519.X25519PrivateKey.generate()
            report = base64.b64encode(release.raw_public(key.public_key())).decode()
            q = await client.quote(http, las_url, measurement, report)
            sealed = await client.attest(http, cas_url, CONFIG, q)
            release.open_sealed(sealed, key, CONFIG)

        async def worker() -> None:
            nonlocal failures
            for _ in remaining:
                if time.monotonic() > deadline:
                    return
                t = time.perf_counter()
                try:
                    await one()
                except (client.Refused, client.Unreachable, release.ReleaseError):
                    failures += 1
                    continue
                latencies.append(time.perf_counter() - t)

        await asyncio.gather(*(one() for _ in range(clients)))  # connections and TLS first
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, failures


def verify_rate(seconds: float = 2.0) -> float:
    """Bare Ed25519 verifications per second over a quote's signed bytes, one core."""
    key = ed25519.Ed25519PrivateKey.generate()
    q = quotes.issue(key, "node-a", "ab" * 32, b"\x01" * 32)
    message, raw, public = q.signed_bytes(), q.signature, key.public_key()
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            public.verify(raw, message)
        done += 200
    return done / elapsed


def cli_runs(n: int, las: LASProcess, cas: CASProcess, ca: Path) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        proc = enclave_run([PROGRAM], CONFIG, las.address, f"127.0.0.1:{cas.enclave_port}", ca)
        if proc.returncode != 0:
            raise RuntimeError(f"enclavectl enclave run failed: {proc.stderr}")
        out.append(time.perf_counter() - t)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=3000, help="attestations to perform")
    parser.add_argument("--clients", type=int, default=8, help="concurrent attestations")
    parser.add_argument("--max-seconds", type=float, default=60, help="stop after this")
    parser.add_argument("--cli-runs", type=int, default=5, help="whole enclavectl runs to time")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="enclave-bench-attest-"))
    certs = Certificates.make(scratch / "certs")
    cas = CASProcess(scratch / "db", certs, scratch / "cas.log")
    las = LASProcess(scratch / "las.log", f"127.0.0.1:{cas.enclave_port}", certs.ca)
    try:
        cas.start()
        las.start()
        if not las.wait_enrolled()["enrolled"]:
            raise RuntimeError(f"LAS did not enrol:\n{las.log.read_text()}")
        measurement = measure(resolve(PROGRAM), [])
        asyncio.run(register(cas, certs.ca, measurement))
        assert cas.proc is not None
        assert las.proc is not None
        before = cpu_seconds(cas.proc.pid), cpu_seconds(las.proc.pid), time.process_time()
        latencies, elapsed, failures = asyncio.run(
            load(
                f"http://{las.address}",
                f"https://127.0.0.1:{cas.enclave_port}",
                certs.ca,
                measurement,
                args.count,
                args.clients,
                args.max_seconds,
            )
        )
        spent = (
            cpu_seconds(cas.proc.pid) - before[0],
            cpu_seconds(las.proc.pid) - before[1],
            time.process_time() - before[2],
        )
        runs = cli_runs(args.cli_runs, las, cas, certs.ca)
        alive = cas.alive() and las.alive()
    finally:
        las.stop()
        cas.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    verifies = verify_rate()
    done = len(latencies)
    if not done:
        print(f"no attestation succeeded ({failures} failed)")
        return 1
    rate = done / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{done} attestations ({failures} failed), {args.clients} concurrent, {elapsed:.1f}s")
    print(f"attestations/s end to end (quote, verification, release): {rate:.0f}")
    print(f"latency p50: {cuts[49] * 1000:.1f} ms, p99: {cuts[98] * 1000:.1f} ms")
    cas_ms, las_ms, own_ms = (s / done * 1000 for s in spent)
    print(f"CPU per attestation: CAS {cas_ms:.2f} ms, LAS {las_ms:.2f} ms, clients {own_ms:.2f} ms")
    print(f"bare Ed25519 verifications/s (cryptography, one core): {verifies:.0f}")
    print(f"attestations / verifications: {rate / verifies:.3f}")
    if runs:
        print(
            f"whole `enclavectl enclave run -- {PROGRAM}` ({len(runs)} runs):"
            f" median {statistics.median(runs) * 1000:.0f} ms, max {max(runs) * 1000:.0f} ms"
        )
    print(f"services alive at the end: {alive}")
    return 0 if failures == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
