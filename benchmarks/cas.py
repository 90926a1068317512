"""benchmarks/cas: signed-policy registrations per second against a CAS process over keep-alive
TLS, with several concurrent clients in this (separate) process.

    .venv/bin/python -m benchmarks.cas [--count 6000] [--clients 16] [--max-seconds 60]

Prints registrations/s, p50/p99 latency, and the bare Ed25519 verification rate of
`cryptography` measured in the same run on the same machine, with the ratio between them: one
registration costs at least one verification, so the ratio says how much of the CAS's time the
rest (TLS, HTTP, JSON, YAML validation, the durable SQLite commit) takes. Goal: ≥ 1000
registrations/s on the 2-core machine. Every request must be answered 201 (a new policy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from tests.support.cas_process import CASProcess, Certificates

from enclave_operator.policies import signing
from enclave_operator.policies.client import tls_context

MEASUREMENT = "5f" * 32


def policy_text(name: str) -> str:
    """A realistic policy: two services with commands, environment and secrets."""
    return f"""name: {name}
version: "1.4"
secrets:
  - name: db-password
    value: "s3cr3t-{name}"
  - name: api-token
    value: "tok-0123456789abcdef"
services:
  - name: api
    measurement: "{MEASUREMENT}"
    command: ["/usr/bin/python3", "/app/server.py", "--port", "8443"]
    environment:
      LOG_LEVEL: info
      DB_HOST: db.internal
    secrets:
      DB_PASSWORD: db-password
      API_TOKEN: api-token
  - name: worker
    measurement: "{MEASUREMENT[::-1]}"
    command: ["/usr/bin/python3", "/app/worker.py"]
    secrets:
      DB_PASSWORD: db-password
"""


def bodies(count: int, key: signing.PrivateKey) -> list[bytes]:
    """Signed before the clock starts: the clients' signing is not what is measured."""
    out = []
    for i in range(count):
        text = policy_text(f"bench-{i:06d}")
        sig = signing.sign(text.encode(), key)
        out.append(json.dumps({"policy": text, "signatures": [sig.as_dict()]}).encode())
    return out


async def load(
    url: str, ca: Path, work: list[bytes], clients: int, max_seconds: float
) -> tuple[list[float], float, dict[int, int]]:
    """``clients`` workers, each on its own keep-alive connection, take bodies in turn."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(work)
    deadline = time.monotonic() + max_seconds
    connector = aiohttp.TCPConnector(ssl=tls_context(ca), limit=clients)
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker() -> None:
            for body in queue:
                if time.monotonic() > deadline:
                    return
                t = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as r:
                    await r.read()
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                latencies.append(time.perf_counter() - t)

        async def handshake() -> None:
            async with session.get(url.replace("policies/signed", "health")) as r:
                await r.read()

        await asyncio.gather(*(handshake() for _ in range(clients)))  # TLS before the clock
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return latencies, elapsed, statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verify_rate(seconds: float = 2.0) -> float:
    """Bare Ed25519 verifications per second over a policy-sized message, one core."""
    key = signing.generate()
    message = policy_text("bench-verify").encode()
    raw = key.sign(message)
    public = key.public_key()
    done, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        for _ in range(200):
            public.verify(raw, message)
        done += 200
    return done / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=6000, help="registrations to send")
    parser.add_argument("--clients", type=int, default=16, help="concurrent connections")
    parser.add_argument("--max-seconds", type=float, default=60, help="stop sending after this")
    args = parser.parse_args()
    loadavg = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="enclave-bench-cas-"))
    cas = CASProcess(scratch / "db", Certificates.make(scratch / "certs"), scratch / "cas.log")
    try:
        work = bodies(args.count, signing.generate())
        cas.start()
        url = f"{cas.url}/v1/policies/signed"
        assert cas.proc is not None
        cas_cpu, own_cpu = cpu_seconds(cas.proc.pid), time.process_time()
        latencies, elapsed, statuses = asyncio.run(
            load(url, cas.ca_file(), work, args.clients, args.max_seconds)
        )
        cas_cpu, own_cpu = cpu_seconds(cas.proc.pid) - cas_cpu, time.process_time() - own_cpu
        alive = cas.alive()
        cas.stop()
        verifies = verify_rate()
    finally:
        cas.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    if not latencies:
        print(f"no registration answered; statuses {statuses}")
        return 1
    rate = len(latencies) / elapsed
    cuts = statistics.quantiles(latencies, n=100)
    print(f"{len(latencies)} registrations, {args.clients} concurrent clients, {elapsed:.1f}s")
    print(f"load average before the run: {loadavg:.2f} (other work here skews every rate)")
    print(f"statuses: {dict(sorted(statuses.items()))}; CAS alive at the end: {alive}")
    print(f"registrations/s: {rate:.0f} (goal ≥ 1000)")
    print(f"latency p50: {cuts[49] * 1000:.1f} ms, p99: {cuts[98] * 1000:.1f} ms")
    per = cas_cpu / len(latencies)
    print(
        f"CPU per registration: CAS {per * 1000:.2f} ms (≈ {per * verifies:.1f} bare"
        f" verifications), clients {own_cpu / len(latencies) * 1000:.2f} ms;"
        f" {os.cpu_count()} cores"
    )
    print(f"bare Ed25519 verifications/s (cryptography, one core): {verifies:.0f}")
    print(f"registrations/s ÷ verifications/s: {rate / verifies:.3f}")
    return 0 if statuses.keys() == {201} and alive else 1


if __name__ == "__main__":
    sys.exit(main())
