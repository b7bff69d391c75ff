"""Helpers shared by test modules of several concerns (a test module imports from here, or
from a helper module of its own folder, never from another test module)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from driver.execute import ApiError
from sim.serve import free_port as free_port

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
"""The time at the start of an operator's text log line (adapters.logs)."""


def until(check: Callable[[], Any], seconds: float = 30.0) -> Any:
    """Poll `check` until it returns something true (API and OS errors count as not yet);
    fail naming its docstring after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = check()
        except (ApiError, OSError, KeyError):
            found = None
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {check.__doc__}")


def logged(output: str, cluster: str, level: str, message: str) -> bool:
    """Whether the operator's text log has a line `<cluster>:<time> <level> <message>...`
    (`cluster` as `name,namespace`; the line may go on after `message`)."""
    line = re.compile(rf"{re.escape(cluster)}:{STAMP} {level} {re.escape(message)}.*")
    return any(line.fullmatch(text) for text in output.splitlines())
