"""The operator's log lines: text for people, or one JSON object per line for log collectors,
where a line about a resource carries its kind, namespace and name as fields to filter on."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")
FIELDS = ("kind", "namespace", "name")


def cr(kind: str, namespace: str | None, name: str) -> dict[str, Any]:
    """`extra=` for a line about one resource; LogRecord keeps `name` for the logger's."""
    return {"cr": {"kind": kind, "namespace": namespace or "", "name": name}}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created, dt.UTC)
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # ours (see `cr`), or kopf's reference to the object a line of its own is about
        ref = getattr(record, "cr", None) or getattr(record, "k8s_ref", None)
        if isinstance(ref, dict):
            entry.update({f: ref.get(f) or "" for f in FIELDS})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(fmt: str, verbose: bool) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    logging.captureWarnings(True)  # warnings too are log lines, not free text on stderr
