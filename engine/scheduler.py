"""Which pods to launch for a demand: Ray's ResourceDemandScheduler, pure and grouped.

This is the decision of `ray.autoscaler._private.resource_demand_scheduler` (Ray 1.13 to
2.60, unchanged in substance), re-stated as pure functions over plain dicts:
- node resources: a connected node offers its *unused* resources, a node not yet connected
  and each launch in flight offer their type's static resources;
- min_workers first (+1 for the head type), then `request_resources()` bin-packed against
  full capacities;
- placement groups: PACK/SPREAD flattened, STRICT_PACK summed, STRICT_SPREAD one bundle per
  distinct node; their demand goes first;
- first-fit bin packing of the demand sorted by (number of keys, sum, items), descending;
- node types chosen one node at a time by the utilization score
  `(gpu_ok, matching resource types, min cap*util^3, mean cap*util^3)`;
- the upscaling throttle `max(5, int(speed * max(running, 1)))` pending nodes per type,
  bypassed by min_workers, `request_resources()` and placement-group needs.

One deliberate difference in *how*, not *what*: demand is kept as (shape, count) groups.
Ray handles each bundle separately, which makes 10k bundles cost ~40 s (benchmark P1);
first-fit of identical bundles in a row fills each node before moving on, so packing a group
at once gives the same placements. The differential test (`tests/engine/test_differential.py`)
checks launches against Ray's own code on generated inputs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby

from engine.events import copyable
from engine.packing import IMPLICIT_PREFIX as IMPLICIT_PREFIX
from engine.packing import Demand as Demand
from engine.packing import Resources as Resources
from engine.packing import Run as Run
from engine.packing import bin_pack_residual as bin_pack_residual
from engine.packing import expand as expand
from engine.packing import fit_count as fit_count
from engine.packing import group as group
from engine.packing import pack, place, residual

UPSCALING_INITIAL_NUM_NODES = 5
CONSERVE_GPU_NODES = True

PACK = "PACK"
SPREAD = "SPREAD"
STRICT_PACK = "STRICT_PACK"
STRICT_SPREAD = "STRICT_SPREAD"


@dataclass(frozen=True, kw_only=True, slots=True)
class NodeType:
    """What the scheduler needs of a pod type."""

    resources: Mapping[str, float]
    min_workers: int
    max_workers: int


Node = tuple[str, Mapping[str, float] | None]
"""An existing (non-terminating) pod: (its type, its unused resources once Ray connected it,
else None). A plain tuple: the autoscaler builds one per pod on every pass."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Launch:
    """The decision: how many pods of each type to create now, and the demand left over."""

    to_launch: Mapping[str, int]
    unfulfilled: Demand


copyable(NodeType, Launch)


def _score(
    node_resources: Mapping[str, float], demand: Demand
) -> tuple[tuple[bool, int, float, float] | None, list[int]]:
    """The score of one fresh node of a type, and how many of each group it would take."""
    remaining = dict(node_resources)
    resource_types: set[str] = set()
    any_gpu_task = False
    usage: list[int] = []
    for resources, count in demand:
        for k, v in resources.items():
            if v > 0:
                resource_types.add(k)
        if "GPU" in resources:
            any_gpu_task = True
        usage.append(place(remaining, resources, count))
    if not any(usage):
        return None, usage
    utils: list[float] = []
    matching = 0
    for k, v in node_resources.items():
        if v < 1:
            continue
        if k in resource_types:
            matching += 1
        util = (v - remaining[k]) / v
        utils.append(v * (util**3))
    if not utils:
        return None, usage
    gpu_ok = True
    if CONSERVE_GPU_NODES:
        is_gpu_node = "GPU" in node_resources and node_resources["GPU"] > 0
        if is_gpu_node and not any_gpu_task:
            gpu_ok = False
    return (gpu_ok, matching, min(utils), float(sum(utils)) / len(utils)), usage


def nodes_for(
    types: Mapping[str, NodeType],
    existing: Mapping[str, int],
    head_type: str,
    max_to_add: int,
    demand: Demand,
    *,
    strict_spread: bool = False,
) -> tuple[dict[str, int], Demand]:
    """Ray's `get_nodes_for`: add the best-scoring type, one node at a time.

    Ray re-scores every type after each node it adds. When a round's placements on every
    type are limited by node capacity rather than by what is left of each demand group, the
    next rounds would score the same and pick the same type, so those rounds are taken at
    once (`_repeats`); the result is the same, in O(groups) instead of O(nodes).
    """
    to_add: dict[str, int] = defaultdict(int)
    added = 0
    while demand and added < max_to_add:
        scores = []
        usages: dict[str, list[int]] = {}
        for name, cfg in types.items():
            cap = cfg.max_workers + (1 if name == head_type else 0)
            if existing.get(name, 0) + to_add.get(name, 0) >= cap:
                continue
            target = [(demand[0][0], 1)] if strict_spread else demand
            score, usage = _score(cfg.resources, target)
            if score is not None:
                scores.append((score, name))
                usages[name] = usage
        if not scores:
            break
        best = max(scores)[1]
        if strict_spread:
            to_add[best] += 1
            added += 1
            first, count = demand[0]
            demand = ([(first, count - 1)] if count > 1 else []) + demand[1:]
            continue
        cfg = types[best]
        cap = cfg.max_workers + (1 if best == head_type else 0)
        room = min(max_to_add - added, cap - existing.get(best, 0) - to_add.get(best, 0))
        n = 1 + min(room - 1, _repeats(demand, usages, best))
        to_add[best] += n
        added += n
        used = usages[best]
        demand = [(r, c - n * u) for (r, c), u in zip(demand, used, strict=True) if c - n * u > 0]
    return dict(to_add), demand


def _repeats(demand: Demand, usages: Mapping[str, list[int]], best: str) -> int:
    """How many more nodes of `best` the next rounds would surely add (see `nodes_for`)."""
    used = usages[best]
    more: int | None = None
    for g, (_, count) in enumerate(demand):
        if not used[g]:
            continue
        need = max(1, max(u[g] for u in usages.values()))
        fits_more = (count - need) // used[g]
        more = fits_more if more is None else min(more, fits_more)
    return max(0, more or 0)


def placement_group_demand(
    groups: Sequence[tuple[str, Sequence[Mapping[str, float]]]],
) -> tuple[Demand, list[Demand]]:
    """Ray's `placement_groups_to_resource_demands` over (strategy, unplaced bundles)."""
    flat: list[tuple[Mapping[str, float], int]] = []
    spreads: list[Demand] = []
    for strategy, bundles in groups:
        if strategy in (PACK, SPREAD):
            flat.extend((dict(b), 1) for b in bundles)
        elif strategy == STRICT_PACK:
            combined: Resources = defaultdict(float)
            for b in bundles:
                for k, v in b.items():
                    combined[k] += v
            flat.append((dict(combined), 1))
        elif strategy == STRICT_SPREAD:
            spreads.append(group([(dict(b), 1) for b in bundles]))
    return group(flat), spreads


def nodes_to_launch(
    *,
    types: Mapping[str, NodeType],
    head_type: str,
    max_workers: int,
    upscaling_speed: float,
    nodes: Sequence[Node],
    launching: Mapping[str, int],
    demand: Demand,
    placement_groups: Sequence[tuple[str, Sequence[Mapping[str, float]]]] = (),
    requests: Demand | None = None,
    connected: Mapping[str, int] | None = None,
) -> Launch:
    """Ray's `ResourceDemandScheduler.get_nodes_to_launch`, with the upscaling throttle."""
    node_resources, counts = _cluster_resources(types, nodes, {})
    return decide(types=types, head_type=head_type, max_workers=max_workers,
                  upscaling_speed=upscaling_speed, node_resources=node_resources,
                  counts=counts, launching=launching, demand=group(demand),
                  placement_groups=placement_groups, requests=requests,
                  connected=_connected(nodes) if connected is None else connected)


def decide(
    *,
    types: Mapping[str, NodeType],
    head_type: str,
    max_workers: int,
    upscaling_speed: float,
    node_resources: list[Run],
    counts: dict[str, int],
    launching: Mapping[str, int],
    demand: Demand,
    placement_groups: Sequence[tuple[str, Sequence[Mapping[str, float]]]],
    requests: Demand | None,
    connected: Mapping[str, int],
) -> Launch:
    """`nodes_to_launch` on nodes already grouped into runs (`node_resources`, with
    `counts` nodes per known type): the autoscaler builds them in one walk of its report.
    Both are taken over (changed in place). `demand` comes from `group`. Without placement
    groups the steps for them are left out (they would find nothing to do)."""
    counts_before = dict(counts)
    for name, n in launching.items():
        cfg = types.get(name)
        if cfg is None or n <= 0:
            continue
        node_resources.append(Run(cfg.resources, n))
        counts[name] = counts.get(name, 0) + n
    node_resources, counts, min_adds = _add_min_workers(
        node_resources, counts, types, max_workers, head_type, requests or []
    )
    if placement_groups:
        pg_demand, strict_spreads = placement_group_demand(placement_groups)
        all_demand = group([*pg_demand, *demand])
        spread_adds, node_resources, counts = _reserve_spread(
            strict_spreads, node_resources, counts, types, max_workers, head_type
        )
        pg_unfulfilled = residual(node_resources, pg_demand) if pg_demand else []
        max_to_add = max_workers + 1 - sum(counts.values())
        pg_adds, _ = nodes_for(types, counts, head_type, max_to_add, pg_unfulfilled)
        pg_limit = {t: spread_adds.get(t, 0) + pg_adds.get(t, 0) for t in types}
    else:
        all_demand, spread_adds, pg_limit = demand, {}, {}
        max_to_add = max_workers + 1 - sum(counts.values())
    unfulfilled = residual(node_resources, all_demand) if all_demand else []
    demand_adds, final_unfulfilled = nodes_for(types, counts, head_type, max_to_add, unfulfilled)
    total: dict[str, int] = {}
    for t in types:
        n = min_adds.get(t, 0) + spread_adds.get(t, 0) + demand_adds.get(t, 0)
        if n > 0:
            total[t] = n
    throttled = _throttle(total, connected, counts_before, launching, min_adds, pg_limit,
                          upscaling_speed)
    return Launch(to_launch=throttled, unfulfilled=final_unfulfilled)


def _cluster_resources(
    types: Mapping[str, NodeType], nodes: Sequence[Node], launching: Mapping[str, int]
) -> tuple[list[Run], dict[str, int]]:
    resources: list[Run] = []
    counts: dict[str, int] = defaultdict(int)
    for (pod_type, available), same in groupby(nodes):  # runs of equal consecutive nodes
        cfg = types.get(pod_type)
        if cfg is None:
            continue
        n = len(list(same))
        node = available if available is not None else cfg.resources
        if resources and resources[-1].resources == node:
            resources[-1].count += n
        else:
            resources.append(Run(node, n))
        counts[pod_type] += n
    for name, n in launching.items():
        cfg = types.get(name)
        if cfg is None or n <= 0:
            continue
        resources.append(Run(cfg.resources, n))
        counts[name] += n
    return resources, counts


def _add_min_workers(
    node_resources: list[Run],
    counts: dict[str, int],
    types: Mapping[str, NodeType],
    max_workers: int,
    head_type: str,
    requests: Demand,
) -> tuple[list[Run], dict[str, int], dict[str, int]]:
    adds: dict[str, int] = {}
    for name, cfg in types.items():
        existing = counts.get(name, 0)
        target = min(cfg.min_workers, cfg.max_workers) + (1 if name == head_type else 0)
        if existing < target:
            adds[name] = target - existing
            counts[name] = target
            node_resources.append(Run(cfg.resources, adds[name]))
    if requests:
        max_to_add = max_workers + 1 - sum(counts.values())
        full = [Run(types[name].resources, counts[name]) for name in counts if counts[name] > 0]
        left = residual(full, group(requests))
        extra, _ = nodes_for(types, counts, head_type, max_to_add, left)
        for name, n in extra.items():
            if n > 0:
                counts[name] = counts.get(name, 0) + n
                node_resources.append(Run(types[name].resources, n))
                adds[name] = adds.get(name, 0) + n
    return node_resources, counts, adds


def _reserve_spread(
    spreads: list[Demand],
    node_resources: list[Run],
    counts: dict[str, int],
    types: Mapping[str, NodeType],
    max_workers: int,
    head_type: str,
) -> tuple[dict[str, int], list[Run], dict[str, int]]:
    to_add: dict[str, int] = defaultdict(int)
    for bundles in spreads:
        unfulfilled, updated = pack(node_resources, bundles, strict_spread=True)
        max_to_add = max_workers + 1 - sum(counts.values())
        launch, _ = nodes_for(
            types, counts, head_type, max_to_add, unfulfilled, strict_spread=True
        )
        fresh = [Run(types[t].resources, n) for t, n in launch.items() if n > 0]
        unfulfilled, reserved = pack(fresh, unfulfilled, strict_spread=True)
        if unfulfilled:
            continue
        for t, n in launch.items():
            counts[t] = counts.get(t, 0) + n
            to_add[t] += n
        node_resources = [Run(r.resources, r.count) for r in updated + reserved]
    return dict(to_add), node_resources, counts


def _connected(nodes: Sequence[Node]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for pod_type, available in nodes:
        if available is not None:
            out[pod_type] += 1
    return out


def _throttle(
    to_launch: Mapping[str, int],
    connected: Mapping[str, int],
    existing: Mapping[str, int],
    launching: Mapping[str, int],
    min_adds: Mapping[str, int],
    pg_limit: Mapping[str, int],
    upscaling_speed: float,
) -> dict[str, int]:
    """Ray's `_get_concurrent_resource_demand_to_launch`: at most max(5, speed x running)
    pending nodes per type; `existing` counts the nodes listed (connected or not)."""
    out: dict[str, int] = {}
    for name, wanted in to_launch.items():
        running = connected.get(name, 0)
        pending = existing.get(name, 0) - running
        allowed = max(UPSCALING_INITIAL_NUM_NODES, int(upscaling_speed * max(running, 1)))
        in_flight = launching.get(name, 0) + pending
        upper = max(allowed - in_flight, min_adds.get(name, 0) + pg_limit.get(name, 0))
        if upper > 0:
            out[name] = min(upper, wanted)
    return out
