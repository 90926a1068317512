"""Mutants of module-level tables and constants, which mutmut 3 leaves alone (it mutates
function bodies only), yet hold much of the logic here: PENDING_WHEN, UNHEALTHY_WHEN, _RULES,
_BY_KIND, GRACE.

Each mutant deletes one entry of a dict, tuple, list or set literal assigned at module level,
or changes one number (+1) or string ("XX" around it) so assigned. The tests run once per
mutant; a mutant survives when they pass. Run it on a scratch copy only (scripts/mutation.sh):

    python table_mutants.py --root DIR FILE... -- TEST...

FILE and TEST are relative to DIR; the files are restored after each mutant.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path


def _offset(lines: list[bytes], line: int, col: int) -> int:
    """ast positions are (1-based line, UTF-8 byte column); this is the byte offset."""
    return sum(len(x) for x in lines[: line - 1]) + col


def _cut(source: bytes, start: int, end: int) -> bytes:
    """Delete source[start:end] with a comma after it; whole lines when it stood alone."""
    rest = source[end:]
    stripped = rest.lstrip(b" ")
    if stripped.startswith(b","):
        end += len(rest) - len(stripped) + 1
    line_start = source.rfind(b"\n", 0, start) + 1
    line_end = source.find(b"\n", end)
    if not source[line_start:start].strip() and not source[end:line_end].split(b"#")[0].strip():
        start, end = line_start, line_end + 1
    return source[:start] + source[end:]


def mutants(source: bytes) -> Iterator[tuple[str, bytes]]:
    """(description, mutated source) for every table entry and constant at module level."""
    lines = source.splitlines(keepends=True)
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not isinstance(target, ast.Name):
            continue
        name = target.id
        if isinstance(value, ast.Dict):
            for key, item in zip(value.keys, value.values, strict=True):
                if key is None:
                    continue
                start = _offset(lines, key.lineno, key.col_offset)
                end = _offset(lines, item.end_lineno or 0, item.end_col_offset or 0)
                yield f"{name}: {ast.unparse(key)} deleted", _cut(source, start, end)
        elif isinstance(value, ast.Tuple | ast.List | ast.Set):
            for elt in value.elts:
                start = _offset(lines, elt.lineno, elt.col_offset)
                end = _offset(lines, elt.end_lineno or 0, elt.end_col_offset or 0)
                yield f"{name}: {ast.unparse(elt)} deleted", _cut(source, start, end)
        elif isinstance(value, ast.Constant):
            old = value.value
            new: object
            if isinstance(old, str):
                new = f"XX{old}XX"
            elif isinstance(old, int | float) and not isinstance(old, bool):
                new = old + 1
            else:
                continue
            start = _offset(lines, value.lineno, value.col_offset)
            end = _offset(lines, value.end_lineno or 0, value.end_col_offset or 0)
            text = repr(new).encode()
            yield f"{name}: {old!r} -> {new!r}", source[:start] + text + source[end:]


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args(argv[:split])
    tests = argv[split + 1 :]
    if not tests:
        parser.error("no tests after --")
    env = {**os.environ, "PYTHONPATH": str(args.root / "src")}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    total = survived = 0
    for name in args.files:
        path = args.root / name
        original = path.read_bytes()
        try:
            for description, mutated in mutants(original):
                compile(mutated, str(path), "exec")  # a broken mutant is a bug here
                path.write_bytes(mutated)
                run = subprocess.run(command, cwd=args.root, env=env, capture_output=True)
                total += 1
                if run.returncode == 0:
                    survived += 1
                    print(f"survived: {name}: {description}")
        finally:
            path.write_bytes(original)
    print(f"table mutants: {total}, killed {total - survived}, survived {survived}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
