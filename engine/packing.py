"""First-fit bin packing of grouped demand onto runs of equal nodes, as Ray packs bundles.

Ray's autoscaler packs one bundle at a time onto one node at a time; here the demand is
kept as (shape, count) groups and the nodes as `Run`s of equal free resources, and a run
takes a group at once, leaving exactly the nodes Ray's loop would (`pack`). This is what
makes 10,000 bundles cost microseconds rather than seconds (benchmark P1), and the
differential test checks the placements against Ray's own code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Resources = dict[str, float]


Demand = list[tuple[Resources, int]]
"""Grouped demand: (resource shape, how many), in Ray's packing order once sorted."""


IMPLICIT_PREFIX = "node:__internal_implicit_resource_"


def group(bundles: Sequence[tuple[Mapping[str, float], int]]) -> Demand:
    """Merge identical shapes and sort them into Ray's packing order (complex, heavy first)."""
    if len(bundles) <= 1:  # the usual report: one shape of pending task, or none
        if not bundles:
            return []
        resources, count = bundles[0]
        return [(dict(resources), count)] if count > 0 else []
    shapes: dict[tuple[tuple[str, float], ...], Resources] = {}
    counts: dict[tuple[tuple[str, float], ...], int] = {}
    for resources, count in bundles:
        if count <= 0:
            continue
        key = tuple(sorted(resources.items()))
        if key in counts:
            counts[key] += count
        else:
            shapes[key] = dict(resources)
            counts[key] = count
    items: Demand = [(shapes[key], n) for key, n in counts.items()]
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
    return place(dict(node), demand, limit)


def place(node: Resources, demand: Mapping[str, float], limit: int) -> int:
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


@dataclass(slots=True)
class Run:
    """`count` consecutive nodes with the same free `resources` (packing a run costs what
    packing one node does); `used` marks nodes a strict-spread group already took."""

    resources: Mapping[str, float]
    count: int
    used: bool = False


def runs_of(nodes: Sequence[Mapping[str, float]]) -> list[Run]:
    """Consecutive equal nodes as runs (order kept, so first-fit is unchanged)."""
    runs: list[Run] = []
    last: Mapping[str, float] | None = None
    for node in nodes:
        if runs and (node is last or node == last):
            runs[-1].count += 1
        else:
            runs.append(Run(node, 1))
            last = node
    return runs


def expand_runs(runs: Sequence[Run]) -> list[Resources]:
    return [dict(r.resources) for r in runs for _ in range(r.count)]


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
    runs = list(runs)  # the runs themselves are not changed: split ones are replaced
    unfulfilled: Demand = []
    for resources, count in sorted(demand, key=_order, reverse=True):
        left = count
        i = 0
        while left and i < len(runs):
            run = runs[i]
            res, k = run.resources, run.count
            if (run.used and strict_spread) or not fits(res, resources):
                i += 1
                continue
            if strict_spread:
                left, new = _spread_into(res, k, resources, left, unfulfilled)
            elif not res:
                break  # Ray: a fitting but empty node dict leaves the bundle unfulfilled
            else:
                left, new = _fill(res, k, resources, left)
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
    for run in runs:
        res = run.resources
        if not fits(res, resources):
            continue
        if not res:
            break  # Ray: a fitting but empty node dict leaves the bundle unfulfilled
        per_node = place(dict(res), resources, left)
        left -= min(left, run.count * per_node)
        if not left:
            return []
    return [(resources, left)]


def _fill(res: Mapping[str, float], k: int, demand: Mapping[str, float], left: int
          ) -> tuple[int, list[Run]]:
    full = dict(res)
    per_node = place(full, demand, left)
    if per_node >= left:  # the first node takes what is left
        new: list[Run] = [Run(full, 1)]
        if k > 1:
            new.append(Run(res, k - 1))
        return 0, new
    n = min(k, left // per_node)
    left -= n * per_node
    new = [Run(full, n)]
    rest = k - n
    if left and rest:
        partial = dict(res)
        place(partial, demand, left)
        new.append(Run(partial, 1))
        rest -= 1
        left = 0
    if rest:
        new.append(Run(res, rest))
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
        unfulfilled.append((dict(demand), m))
    new: list[Run] = [Run(after, m, True)]
    if k > m:
        new.append(Run(res, k - m))
    return left - m, new


def _merge_adjacent(demand: Demand) -> Demand:
    out: Demand = []
    for resources, count in demand:
        if out and out[-1][0] == resources:
            out[-1] = (out[-1][0], out[-1][1] + count)
        else:
            out.append((resources, count))
    return out
