"""What happened in a run, told step by step: the story `python -m sim` prints.

The timeline's steps say what was done to the world (a cluster created, edited live, given
work, its head killed, deleted; an operator restarted); the statuses the operators wrote
say what they made of it (Running, restarting, scaling to N workers). Both are kept here as
`Line`s in the order they happened, so a first run explains itself without a trace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen

if TYPE_CHECKING:
    from sim.world import World

LIMIT = 10_000
"""Lines kept at most (a long run keeps its first ones and counts the rest)."""


STEP = "step"  # a step of the scenario
DEMAND = "demand"  # a step that adds work for Ray (the plot marks it apart)
STATUS = "status"  # what an operator made of it, from the status it wrote


@frozen
class Line:
    at: float
    cluster: str  # ns/name, or "" for the world (an operator, the API)
    text: str
    kind: str = STEP


def tell(world: World, cluster: str, text: str, kind: str = STEP) -> None:
    if len(world.story) < LIMIT:
        world.story.append(Line(world.now, cluster, text, kind))
    else:
        world.untold += 1


def created(spec: Mapping[str, Any]) -> str:
    head = spec.get("headPodType")
    workers = ", ".join(f"{t.get('name')} {t.get('minWorkers', 0)}..{t.get('maxWorkers', '-')}"
                        for t in spec.get("podTypes") or [] if t.get("name") != head)
    return f"created (head {head}; workers {workers or 'none'})"


def edited(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What a `helm upgrade` (a new spec) changed, in a few words."""
    changes = []
    for key in sorted({*old, *new} - {"podTypes"}):
        if old.get(key) != new.get(key):
            changes.append(f"{key} {old.get(key, '-')} -> {new.get(key, '-')}")
    before = {t.get("name"): t for t in old.get("podTypes") or []}
    after = {t.get("name"): t for t in new.get("podTypes") or []}
    for name in sorted(set(before) | set(after), key=str):
        a, b = before.get(name), after.get(name)
        if a is None or b is None:
            changes.append(f"type {name} {'added' if a is None else 'removed'}")
            continue
        for bound in ("minWorkers", "maxWorkers"):
            if a.get(bound) != b.get(bound):
                changes.append(f"{name} {bound} {a.get(bound, '-')} -> {b.get(bound, '-')}")
        if a.get("podConfig") != b.get("podConfig"):
            changes.append(f"{name} pod config")
    return "updated live: " + (", ".join(changes) if changes else "no change to the spec")


PHASES = {"Running": "Running", "Updating": "starting its head",
          "AutoscalingExceptionRecovery": "restarting Ray (restart {restarts})",
          "Error": "Error: {message}"}
"""How a phase written to the status is told."""


def status_written(world: World, cluster: str, status: Mapping[str, Any]) -> None:
    """An operator wrote a status: tell a new phase and a new number of desired workers."""
    phase = status.get("phase")
    desired = status.get("desiredWorkers")
    last_phase, last_desired = world.told.get(cluster, ("", -1))
    if isinstance(phase, str) and phase and phase != last_phase:
        told = PHASES[phase].format(restarts=status.get("autoscalerRetries") or 0,
                                    message=status.get("message", "")) \
            if phase in PHASES else phase
        tell(world, cluster, told, STATUS)
        last_phase = phase
    if isinstance(desired, Mapping):
        total = sum(n for n in desired.values() if isinstance(n, int))
        if total != max(last_desired, 0):
            verb = "scaling up" if total > max(last_desired, 0) else "scaling down"
            types = ", ".join(f"{t} {n}" for t, n in sorted(desired.items()) if n)
            tell(world, cluster, f"{verb} to {total} workers ({types or 'none'})", STATUS)
        last_desired = total
    world.told[cluster] = (last_phase, last_desired)
