"""The operator's log lines: when, how severe, about which cluster, as text or JSON.

The engine and the driver say what happened as one line, starting with the cluster's prefix
`<name>,<namespace>:` when it is about a cluster, and with its level when it is not INFO.
This module only formats those lines. Text keeps the prefix first, as the legacy operator
wrote it (`example-cluster,ray:2026-12-06T10:00:00.123Z INFO Adding 2 nodes ...`), so that
`grep '^example-cluster,ray:'` finds every line about one cluster; install-wide lines start
with the time. JSON (`--log-format json`) gives each line as one object with `time`,
`level`, `cluster`, `namespace` and `message`, for log pipelines. Times are UTC, ISO 8601.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, NamedTuple, TextIO

from pythonjsonlogger.json import JsonFormatter

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_LINE = re.compile(r"(?:(?P<cluster>[^\s,:]+),(?P<namespace>[^\s,:]+): ?)?"
                   r"(?:(?P<level>DEBUG|INFO|WARNING|ERROR) )?(?P<text>.*)", re.S)


def iso(seconds: float) -> str:
    """`seconds` since the epoch as UTC ISO 8601 with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Line(NamedTuple):
    """One log line, read back into its parts."""

    cluster: str
    namespace: str
    level: str
    text: str


def parts(record: logging.LogRecord) -> Line:
    """The cluster, namespace and level of a line (a level word in it wins over the
    logging call's), and the rest."""
    found = _LINE.fullmatch(record.getMessage())
    assert found is not None  # the pattern matches any text
    return Line(found["cluster"] or "", found["namespace"] or "",
                found["level"] or record.levelname, found["text"])


class Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = parts(record)
        text = f"{iso(record.created)} {line.level} {line.text}"
        return f"{line.cluster},{line.namespace}:{text}" if line.cluster else text


class Json(JsonFormatter):
    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord,
                   message_dict: dict[str, Any]) -> None:
        line = parts(record)
        log_data["time"] = iso(record.created)
        log_data["level"] = line.level
        if line.cluster:
            log_data["cluster"] = line.cluster
            log_data["namespace"] = line.namespace
        log_data["message"] = line.text


def configure(fmt: str, stream: TextIO = sys.stdout) -> logging.Logger:
    """Send the `ray-operator` logger's lines to `stream` in format `fmt` (text or json)."""
    if fmt not in FORMATS:
        raise ValueError(f"--log-format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(Json() if fmt == "json" else Text())
    log = logging.getLogger("ray-operator")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    return log
