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

Resources = dict[str, float]
Demand = list[tuple[Resources, int]]
"""Grouped demand: (resource shape, how many), in Ray's packing order once sorted."""

UPSCALING_INITIAL_NUM_NODES = 5
CONSERVE_GPU_NODES = True
IMPLICIT_PREFIX = "node:__internal_implicit_resource_"

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


def group(bundles: Sequence[tuple[Mapping[str, float], int]]) -> Demand:
    """Merge identical shapes and sort them into Ray's packing order (complex, heavy first)."""
    if len(bundles) <= 1:  # the usual report: one shape of pending task, or none
        if not bundles:
            return []
        resources, count = bundles[0]
        return [(dict(resources), count)] if count > 0 else []
    merged: dict[tuple[tuple[str, float], ...], list[object]] = {}
    for resources, count in bundles:
        if count <= 0:
            continue
        key = tuple(sorted(resources.items()))
        entry = merged.get(key)
        if entry is None:
            merged[key] = [dict(resources), count]
        else:
            entry[1] = int(entry[1]) + count  # type: ignore[call-overload]
    items: Demand = [(r, c) for r, c in merged.values()]  # type: ignore[misc]
    items.sort(key=_order, reverse=True)
    return items


def _order(item: tuple[Resources, int]) -> tuple[int, float, list[tuple[str, float]]]:
    demand = item[0]
    return (len(demand), sum(demand.values()), sorted(demand.items()))


def expand(demand: Demand) -> list[Resources]:
    """Grouped demand as Ray's flat list of bundles (for tests and messages)."""
    return [dict(r) for r, c in demand for _ in range(c)]


def fits(node: Mapping[str, float], demand: Mapping[str, float]) -> bool:
    for k, v in demand.items():
        if v > node.get(k, 1.0 if k.startswith(IMPLICIT_PREFIX) else 0.0):
            return False
    return True


def _have(node: Mapping[str, float], key: str) -> float:
    return node.get(key, 1.0 if key.startswith(IMPLICIT_PREFIX) else 0.0)


def _subtract(node: Resources, demand: Mapping[str, float]) -> None:
    for k, v in demand.items():
        if v == 0:
            continue
        if k not in node:
            node[k] = 1
        node[k] -= v


def fit_count(node: Mapping[str, float], demand: Mapping[str, float], limit: int) -> int:
    """How many copies of `demand` (at most `limit`) first-fit places on a node."""
    return _fit_count(dict(node), demand, limit)


def _fit_count(node: Resources, demand: Mapping[str, float], limit: int) -> int:
    """Place up to `limit` copies of `demand` on `node` one by one, as Ray's loop would.

    With whole numbers (the usual CPU/GPU counts) the count is a division; otherwise the
    copies are subtracted one at a time, so float rounding matches Ray's loop."""
    positive = []
    whole = True
    for k, v in demand.items():
        have = node.get(k)
        if have is None:
            have = 1.0 if k.startswith(IMPLICIT_PREFIX) else 0.0
        if v > have:
            return 0  # does not fit even once
        if v > 0:
            positive.append((k, v, have))
            if whole and not (float(v).is_integer() and float(have).is_integer()):
                whole = False
    if not positive:
        return limit
    if whole:
        n = limit
        for _, v, have in positive:
            q = int(have // v)
            if q < n:
                n = q
        for k, v, have in positive:
            node[k] = have - v * n
        return n
    n = 0
    while n < limit and fits(node, demand):
        _subtract(node, demand)
        n += 1
    return n


Run = list[object]
"""[resources, count, used]: `count` consecutive nodes with the same resources; `used` marks
nodes a strict-spread group already took."""


def runs_of(nodes: Sequence[Mapping[str, float]]) -> list[Run]:
    """Consecutive equal nodes as runs (order kept, so first-fit is unchanged)."""
    runs: list[Run] = []
    last: Mapping[str, float] | None = None
    for node in nodes:
        if runs and (node is last or node == last):
            runs[-1][1] += 1  # type: ignore[operator]
        else:
            runs.append([node, 1, False])
            last = node
    return runs


def expand_runs(runs: Sequence[Run]) -> list[Resources]:
    return [dict(r[0]) for r in runs for _ in range(r[1])]  # type: ignore[call-overload]


def bin_pack_residual(
    nodes: Sequence[Mapping[str, float]], demand: Demand, *, strict_spread: bool = False
) -> tuple[Demand, list[Resources]]:
    """Ray's `get_bin_pack_residual`: first-fit `demand` (sorted) onto `nodes`; return the
    residual and every node after packing (the input is not changed)."""
    unfulfilled, runs = pack(runs_of(nodes), demand, strict_spread=strict_spread)
    return unfulfilled, expand_runs(runs)


def pack(runs: list[Run], demand: Demand, *, strict_spread: bool = False
         ) -> tuple[Demand, list[Run]]:
    """First-fit over runs of identical nodes; returns the residual and new runs.

    Filling a run's nodes one by one gives `f` bundles to each node until the group runs
    out (`f` = how many fit on a fresh node of the run), then a partial node: the run splits
    into [full nodes][one partial node][untouched nodes], in that order, exactly the nodes
    Ray's node-by-node loop would leave. The input runs are not changed.
    """
    runs = [list(r) for r in runs]
    unfulfilled: Demand = []
    for resources, count in sorted(demand, key=_order, reverse=True):
        left = count
        i = 0
        while left and i < len(runs):
            res, k, used = runs[i]
            if (used and strict_spread) or not fits(res, resources):  # type: ignore[arg-type]
                i += 1
                continue
            if strict_spread:
                left, new = _spread_into(res, k, resources, left, unfulfilled)  # type: ignore[arg-type]
            elif not res:
                break  # Ray: a fitting but empty node dict leaves the bundle unfulfilled
            else:
                left, new = _fill(res, k, resources, left)  # type: ignore[arg-type]
            runs[i:i + 1] = new
            i += len(new)
        if left:
            unfulfilled.append((resources, left))
    return _merge_adjacent(unfulfilled), runs


def residual(runs: list[Run], demand: Demand) -> Demand:
    """What `pack` leaves unplaced (the packed nodes are not needed).

    One group of bundles, the usual demand, is placed run by run: a run of `k` nodes that
    each take `f` copies places `min(left, k * f)`, as `_fill` splits it."""
    if len(demand) != 1:
        return pack(runs, demand)[0]
    resources, left = demand[0]
    for res, k, _ in runs:
        if not fits(res, resources):  # type: ignore[arg-type]
            continue
        if not res:
            break  # Ray: a fitting but empty node dict leaves the bundle unfulfilled
        per_node = _fit_count(dict(res), resources, left)  # type: ignore[call-overload]
        left -= min(left, k * per_node)  # type: ignore[operator]
        if not left:
            return []
    return [(resources, left)]


def _fill(res: Mapping[str, float], k: int, demand: Mapping[str, float], left: int
          ) -> tuple[int, list[Run]]:
    full = dict(res)
    per_node = _fit_count(full, demand, left)
    if per_node >= left:  # the first node takes what is left
        new: list[Run] = [[full, 1, False]]
        if k > 1:
            new.append([res, k - 1, False])
        return 0, new
    n = min(k, left // per_node)
    left -= n * per_node
    new = [[full, n, False]]
    rest = k - n
    if left and rest:
        partial = dict(res)
        _fit_count(partial, demand, left)
        new.append([partial, 1, False])
        rest -= 1
        left = 0
    if rest:
        new.append([res, rest, False])
    return left, new


def _spread_into(res: Mapping[str, float], k: int, demand: Mapping[str, float], left: int,
                 unfulfilled: Demand) -> tuple[int, list[Run]]:
    """Strict spread: each bundle takes a whole node of the run, at most one per node."""
    m = min(k, left)
    if res:
        after = dict(res)
        _subtract(after, demand)
    else:  # Ray: an empty node that fits still leaves the bundle unfulfilled
        after = {}
        unfulfilled.append((demand, m))  # type: ignore[arg-type]
    new: list[Run] = [[after, m, True]]
    if k > m:
        new.append([res, k - m, False])
    return left - m, new


def _merge_adjacent(demand: Demand) -> Demand:
    out: Demand = []
    for resources, count in demand:
        if out and out[-1][0] == resources:
            out[-1] = (out[-1][0], out[-1][1] + count)
        else:
            out.append((resources, count))
    return out


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
        usage.append(_fit_count(remaining, resources, count))
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
        node_resources.append([cfg.resources, n, False])
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
        if resources and resources[-1][0] == node:
            resources[-1][1] += n  # type: ignore[operator]
        else:
            resources.append([node, n, False])
        counts[pod_type] += n
    for name, n in launching.items():
        cfg = types.get(name)
        if cfg is None or n <= 0:
            continue
        resources.append([cfg.resources, n, False])
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
            node_resources.append([cfg.resources, adds[name], False])
    if requests:
        max_to_add = max_workers + 1 - sum(counts.values())
        full: list[Run] = [[types[name].resources, counts[name], False]
                           for name in counts if counts[name] > 0]
        left = residual(full, group(requests))
        extra, _ = nodes_for(types, counts, head_type, max_to_add, left)
        for name, n in extra.items():
            if n > 0:
                counts[name] = counts.get(name, 0) + n
                node_resources.append([types[name].resources, n, False])
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
        fresh: list[Run] = [[types[t].resources, n, False] for t, n in launch.items() if n > 0]
        unfulfilled, reserved = pack(fresh, unfulfilled, strict_spread=True)
        if unfulfilled:
            continue
        for t, n in launch.items():
            counts[t] = counts.get(t, 0) + n
            to_add[t] += n
        node_resources = [[r, k, False] for r, k, _ in updated + reserved]
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
