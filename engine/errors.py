"""Typed errors of the core.

The core never signals a problem with a boolean or a None: an invalid RayCluster is an
`InvalidSpec` listing every problem with its field path, and a move the phase machine does
not allow is an `IllegalTransition`. Callers decide what to do with them; the core turns an
`InvalidSpec` into phase `Error` for that one cluster and goes on with the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from attrs import frozen

if TYPE_CHECKING:
    from engine.phases import Phase


@frozen(kw_only=True)
class Problem:
    """One thing wrong with a RayCluster, at a field path such as `spec.podTypes[1].minWorkers`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class InvalidSpec(ValueError):
    """A RayCluster the engine rejects; `problems` holds every problem found, in field order."""

    def __init__(self, problems: tuple[Problem, ...], *, whole: bool = False) -> None:
        self.problems = problems
        self.whole = whole  # the object as a whole cannot be taken (too deep, too big)
        super().__init__("; ".join(str(p) for p in problems))


class IllegalTransition(Exception):
    """A lifecycle input that the phase table does not allow in the current phase."""

    def __init__(self, phase: Phase, trigger: str) -> None:
        self.phase = phase
        self.trigger = trigger
        super().__init__(f"no transition from phase {phase.value!r} on {trigger}")


def describe(exc: BaseException, limit: int = 400) -> str:
    """`Type: message` of an exception, short and never raising itself (a message may be
    huge, or its `__str__` may fail: it can carry a tenant's data)."""
    try:
        text = str(exc)
    except Exception:  # the message itself cannot be shown
        text = "(no message)"
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
