"""Step 1 of an autoscaler pass: which workers go, and why (`engine.autoscaler`).

Walk the workers most recently used first (never-connected last), keep up to
min(minWorkers, maxWorkers) per type and those `request_resources()` needs; remove workers
of unknown types, above their type's max, idle past the timeout, then the least recently
used of the rest while above the global max; outdated workers are replaced gently
(`engine.rolling`). The reasons are Ray's words, which logs and Events repeat.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from engine import events as ev
from engine import rolling, scheduler
from engine.records import ClusterState

NOT_IN_TYPES = "not in available_node_types"
MAX_PER_TYPE = "max_workers_per_type"
IDLE = "idle"
OUTDATED = "outdated"
MAX_WORKERS = "max workers"


def enforce(
    cs: ClusterState,
    types: Mapping[str, scheduler.NodeType],
    workers: list[ev.PodSeen],
    by_ip: Mapping[str, float],
    now: float,
    *,
    idle: bool,
    held: set[str],
) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The constraints of step 1 (module docstring): which workers go, and why, and the
    replacements a rolling update launches ahead (`engine.rolling`). A worker in `held`
    (Ray refused to drain it a moment ago: busy) stays whatever its reason to go."""
    spec = cs.spec
    assert spec is not None
    last_used = {p.name: by_ip[p.ip] for p in workers if p.ip in by_ip}
    ordered = sorted(workers, key=lambda p: last_used.get(p.name, -1.0), reverse=True)
    protected = needed_for_requests(cs, types, ordered)
    cutoff = now - spec.idle_timeout_seconds
    kept: dict[str, int] = defaultdict(int)
    could: list[str] = []
    out: list[tuple[str, str]] = []
    outdated: list[ev.PodSeen] = []
    for pod in ordered:
        t = spec.pod_types.get(pod.pod_type)
        if t is not None and pod.launch_hash != t.launch_hash:
            outdated.append(pod)  # replaced gently (`engine.rolling`), below
            continue
        if pod.name in held:
            kept[pod.pod_type] += 1
            continue
        if t is None:
            out.append((pod.name, NOT_IN_TYPES))
            continue
        count = kept[pod.pod_type] + 1
        keep = count <= min(t.min_workers, t.max_workers)
        if not keep and count > t.max_workers:
            out.append((pod.name, MAX_PER_TYPE))
            continue
        if keep or pod.name in protected:
            kept[pod.pod_type] += 1
            continue
        used = last_used.get(pod.name)
        if idle and used is not None and used < cutoff:
            out.append((pod.name, IDLE))
        else:
            kept[pod.pod_type] += 1
            could.append(pod.name)
    extra = min(len(workers) - len(out) - len(outdated) - spec.max_workers, len(could))
    if extra > 0:
        out.extend((name, MAX_WORKERS) for name in could[-extra:])
    if outdated:
        going, surge = rolling.replace(
            cs, outdated, workers, (name for name, _ in out), last_used, held,
            idle_reason=IDLE, outdated_reason=OUTDATED, cutoff=cutoff, idle=idle)
        out.extend(going)
        return out, surge
    return out, {}


def needed_for_requests(
    cs: ClusterState, types: Mapping[str, scheduler.NodeType], ordered: list[ev.PodSeen]
) -> frozenset[str]:
    """Ray's `_get_nodes_needed_for_request_resources`: workers whose capacity the requests use."""
    spec, load = cs.spec, cs.load
    assert spec is not None
    if load is None or not (load.requests or load.placement_groups):
        return frozenset()
    pg_demand, spreads = scheduler.placement_group_demand(
        [(g.strategy, g.bundles) for g in load.placement_groups]
    )
    demand = scheduler.group(
        [*pg_demand, *((b.resources, b.count) for b in load.requests)]
    )
    if not demand and not spreads:
        return frozenset()
    totals = [dict(types[spec.head_pod_type].resources)]
    named: list[str] = []
    for pod in ordered:
        t = types.get(pod.pod_type)
        if t is not None:
            totals.append(dict(t.resources))
            named.append(pod.name)
    remaining = [dict(n) for n in totals]
    for bundles in spreads:
        unfulfilled, updated = scheduler.bin_pack_residual(remaining, bundles, strict_spread=True)
        if not unfulfilled:
            remaining = updated
    _, remaining = scheduler.bin_pack_residual(remaining, demand)
    return frozenset(
        name for name, total, left in zip(named, totals[1:], remaining[1:], strict=True)
        if not (left == total and total)
    )
