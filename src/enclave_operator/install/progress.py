"""Waiting until resources are HEALTHY, showing where each one stands while it happens.

On a terminal a Rich live table is redrawn in place; otherwise (CI, pipes, tests) a line is
printed whenever the picture changes, so logs show the same progress without control codes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from enclave_operator.install.summary import Row, Verdict, describe, verdict, waiting_for

Fetch = Callable[[], Sequence[Row]]
Extra = Callable[[], str | None]


def headline(v: Verdict, elapsed: float) -> str:
    return f"{v.ready}/{v.total} HEALTHY after {elapsed:.0f}s"


def _table(listed: Sequence[Row], v: Verdict, elapsed: float, extra: str | None) -> Group:
    table = Table(title=headline(v, elapsed), title_justify="left", expand=False)
    table.add_column("resource")
    table.add_column("state")
    table.add_column("waiting for")
    for r in listed:
        colour = "green" if r.ready else "yellow"
        waiting = "" if r.ready else waiting_for(r)
        table.add_row(r.ref, Text(r.state, style=colour), waiting)
    return Group(table, Text(extra or "", style="dim"))


def wait_healthy(
    fetch: Fetch, timeout: float, console: Console, extra: Extra | None = None
) -> tuple[Verdict, Sequence[Row]]:
    """Poll ``fetch`` until every row is ready or ``timeout`` passes; the last picture."""
    start = time.monotonic()
    listed = fetch()
    v = verdict(listed)
    last: tuple[str, ...] = ()
    live = (
        Live(console=console, transient=False, auto_refresh=False) if console.is_terminal else None
    )
    try:
        if live is not None:
            live.start()
        while True:
            elapsed = time.monotonic() - start
            note = extra() if extra else None
            if live is not None:
                live.update(_table(listed, v, elapsed, note), refresh=True)
            else:
                picture = (f"{v.ready}/{v.total}", *(describe(r) for r in v.waiting), note or "")
                if picture != last:
                    console.print(f"[{elapsed:4.0f}s] {headline(v, elapsed)}", highlight=False)
                    for r in v.waiting:
                        console.print(f"        {describe(r)}", highlight=False)
                    if note:
                        console.print(f"        {note}", highlight=False)
                    last = picture
            if v.ok or elapsed > timeout:
                return v, listed
            time.sleep(1.0)
            listed = fetch()
            v = verdict(listed)
    finally:
        if live is not None:
            live.stop()
