"""The measurement of a program in simulation mode: what a policy's ``measurement`` names.

Definition (version 1), all hashes SHA-256, the result as 64 lowercase hex digits::

    measurement = SHA-256( b"enclave-measurement v1\\0"
                           || SHA-256(bytes of the program file)
                           || u32be(number of arguments)
                           || for each argument: u32be(length) || argument bytes )

The program is CMD resolved as ``execvp`` would (a name without ``/`` is looked up in
``PATH``), symlinks followed; its bytes are what is measured, not its path, so the same file
measures alike wherever it lies. A script starting with ``#!`` is the program itself: its own
bytes are measured, the interpreter it names is not. The arguments are ARGS, the words after
CMD, as bytes (``os.fsencode``); CMD's spelling is not part of the measurement.

In hardware SGX the CPU measures the enclave's pages; in simulation this hash stands in, and
LAS signs whatever measurement a workload claims (there is no CPU to vouch for it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
from collections.abc import Sequence
from pathlib import Path

PREFIX = b"enclave-measurement v1\0"
CHUNK = 1024 * 1024


class ProgramError(ValueError):
    """CMD does not name an executable file."""


def resolve(cmd: str, path: str | None = None) -> Path:
    """The file ``execvp(cmd)`` would run, symlinks resolved."""
    if not cmd:
        raise ProgramError("no command given")
    found = cmd if "/" in cmd else shutil.which(cmd, path=path)
    if found is None:
        raise ProgramError(f"{cmd!r}: not found in PATH")
    real = Path(os.path.realpath(found))
    if not real.is_file():
        raise ProgramError(f"{cmd!r}: {real} is not a file")
    if not os.access(real, os.X_OK):
        raise ProgramError(f"{cmd!r}: {real} is not executable")
    return real


def file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError as e:
        raise ProgramError(f"{path}: cannot be read ({e.strerror})") from e
    return h.digest()


def measure_digest(program_digest: bytes, args: Sequence[str]) -> str:
    h = hashlib.sha256(PREFIX)
    h.update(program_digest)
    h.update(struct.pack(">I", len(args)))
    for arg in args:
        raw = os.fsencode(arg)
        h.update(struct.pack(">I", len(raw)))
        h.update(raw)
    return h.hexdigest()


def measure(program: Path, args: Sequence[str]) -> str:
    """The measurement of an already resolved program run with ``args`` (ARGS, not argv[0])."""
    return measure_digest(file_digest(program), args)
