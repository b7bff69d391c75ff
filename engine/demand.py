"""Demand the autoscaler cannot meet, told where Kubernetes users look.

After a pass, what Ray asked for and no launch covers is of two kinds:
- infeasible: a bundle no pod type can hold even on an empty node (a task asking for 64
  CPUs of a cluster whose largest type has 8). Nothing will ever run it; it is a mistake of
  the workload or the cluster's types. Told as a Warning Event naming the bundles (once per
  change), the status condition `DemandFeasible` False, and a metric;
- held back: bundles a type could hold, waiting because a maximum (the cluster's or a
  type's maxWorkers) or the upscaling speed keeps the launch back, or a type is unavailable
  for a while (its pods did not start). The condition `DemandMet` False says why, with
  counts, and the metric counts them.

`status.pendingDemand` carries the counts (`infeasible`, `heldBack`) for metrics and
`kubectl get -o yaml`. The note rides on the status signature: a pass that finds another
note writes the status at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from engine import autoscaler
from engine.packing import fits
from engine.records import ClusterState


class Note(NamedTuple):
    """What of the demand no launch covers: the conditions' words, and the counts."""

    infeasible: str = ""  # the DemandFeasible message ("" when all is feasible)
    held_reason: str = ""  # the DemandMet reason ("" when nothing waits)
    held: str = ""  # the DemandMet message
    infeasible_count: int = 0
    held_count: int = 0


NONE = Note()


def shape(resources: Mapping[str, float]) -> str:
    """A bundle as users write it: `{CPU: 2, GPU: 1}`."""
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"


def shapes(items: Sequence[tuple[Mapping[str, float], int]], *, counts: bool = True,
           limit: int = 5) -> str:
    """A few bundles, with their counts or not: `{CPU: 64} x3, {GPU: 8} x1`."""
    parts = [f"{shape(r)} x{n}" if counts else shape(r) for r, n in items[:limit]]
    if len(items) > limit:
        parts.append(f"and {len(items) - limit} more shapes")
    return ", ".join(parts)


def note(cs: ClusterState, types: Mapping[str, Mapping[str, float]],
         unfulfilled: Sequence[tuple[Mapping[str, float], int]], launched: int,
         now: float) -> Note:
    """The note of a pass: `types` are each pod type's resources, `unfulfilled` what the
    scheduler left after its launches, `launched` how many pods it launches now."""
    load = cs.load
    if load is None:
        return NONE
    asked: list[tuple[Mapping[str, float], int]] = [(b.resources, b.count) for b in load.pending]
    asked += [(b, 1) for g in load.placement_groups for b in g.bundles]
    asked += [(b.resources, b.count) for b in load.requests]
    infeasible: dict[tuple[tuple[str, float], ...], int] = {}
    for r, n in asked:
        if r and not any(fits(t, r) for t in types.values()):
            key = tuple(sorted(r.items()))
            infeasible[key] = infeasible.get(key, 0) + n
    held = [(r, n) for r, n in unfulfilled if tuple(sorted(r.items())) not in infeasible]
    held_count = sum(n for _, n in held)
    reason, why = _why(cs, launched, now) if held_count else ("", "")
    bad = sorted((dict(k), n) for k, n in infeasible.items())
    return Note(
        infeasible=(f"no pod type can hold {shapes(bad, counts=False)}: change the workload "
                    "or add a pod type that fits") if bad else "",
        held_reason=reason,
        held=f"{held_count} bundles wait ({shapes(held, counts=True)}): {why}" if held else "",
        infeasible_count=sum(infeasible.values()), held_count=held_count)


def full(cs: ClusterState) -> bool:
    """Whether no pod can be launched beyond what is there and in flight: the cluster at
    its maxWorkers, or every type at its own."""
    spec = cs.spec
    assert spec is not None
    return cs.live_total + sum(cs.inflight.values()) >= spec.max_workers or not any(
        cs.live.get(n, 0) + cs.inflight.get(n, 0) < t.max_workers
        for n, t in spec.pod_types.items())


def quick(cs: ClusterState, now: float) -> Note:
    """The note when no launch can help (`full`), or when the planner took its shortcut (no
    launch beyond minWorkers could happen, `engine.autoscaler.may_launch_beyond_min`): then
    either nothing is asked, or what is asked fits what runs, or the cluster is full and
    every pending bundle waits for a maximum. Costs O(shapes x types), so the planner's
    shortcut and a full pass note the same without packing anything."""
    load, spec = cs.load, cs.spec
    assert spec is not None
    if load is None or not (load.pending or load.requests or load.placement_groups):
        return NONE
    if not full(cs):  # what is asked fits on what runs
        return NONE
    types = {n: t.resources for n, t in autoscaler.node_types(cs).items()}
    return note(cs, types, [(b.resources, b.count) for b in load.pending], 0, now)


def _why(cs: ClusterState, launched: int, now: float) -> tuple[str, str]:
    """Why demand waits: (a condition reason, in words)."""
    spec = cs.spec
    assert spec is not None
    total = cs.live_total + sum(cs.inflight.values()) + launched
    if total >= spec.max_workers:
        return "MaxWorkers", f"the cluster is at its maxWorkers {spec.max_workers}"
    full = [t for t, pt in spec.pod_types.items()
            if t != spec.head_pod_type and pt.max_workers
            and cs.live.get(t, 0) + cs.inflight.get(t, 0) >= pt.max_workers]
    if full:
        return "TypeMaxWorkers", f"pod types at their maxWorkers: {', '.join(sorted(full))}"
    out = sorted(t for t, until in cs.unavailable.items() if now < until)
    if out:
        return "TypeUnavailable", f"pod types unavailable for now: {', '.join(out)}"
    return "Launching", f"launching at upscalingSpeed {spec.upscaling_speed:g}, more follow"


def pending_demand(note: Note) -> dict[str, int]:
    """`status.pendingDemand`: bundles no type can hold, and bundles waiting."""
    return {"infeasible": note.infeasible_count, "heldBack": note.held_count}
