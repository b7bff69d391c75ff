"""One autoscaler pass over one cluster: which workers to remove, how many to launch.

This is the body of Ray's `StandardAutoscaler._update` (Ray 2.x,
`ray/autoscaler/_private/autoscaler.py`) as a pure function of a `ClusterState`:
1. enforce constraints: walk the workers most recently used first (never-connected last),
   keep up to min(minWorkers, maxWorkers) per type and those `request_resources()` needs,
   remove workers of unknown types ("not in available_node_types"), above their type's max
   ("max_workers_per_type"), idle past the timeout ("idle"; only a connected worker, and only
   on a fresh load report so a busy node is never taken for idle); then remove the least
   recently used of the rest while above the global max ("max workers"); outdated workers
   ("outdated") are replaced a few at a time, never below minWorkers (`engine.rolling`:
   here we differ from Ray, which removes them all at once);
2. launch: `engine.scheduler.nodes_to_launch` over what remains.

The pass costs O(pods of the cluster); the planner runs it when a load report arrives, the
spec changes or a timer fires, as Ray runs `update()` every 5 s, never per pod event.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from itertools import compress, groupby
from operator import attrgetter

from engine import constraints, drains, scheduler, stuck
from engine import events as ev
from engine.constraints import IDLE as IDLE  # the reasons, re-exported
from engine.constraints import MAX_PER_TYPE as MAX_PER_TYPE
from engine.constraints import MAX_WORKERS as MAX_WORKERS
from engine.constraints import NOT_IN_TYPES as NOT_IN_TYPES
from engine.constraints import OUTDATED as OUTDATED
from engine.load import least_recent_use
from engine.packing import Run
from engine.records import ClusterState

_pod_type = attrgetter("pod_type")


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    terminate: tuple[tuple[str, str], ...]  # (pod name, reason), in decision order
    launch: Mapping[str, int]
    unfulfilled: scheduler.Demand
    types: Mapping[str, scheduler.NodeType]  # what the pass saw (runtime-refreshed resources)


ev.copyable(Decision)


def last_use(cs: ClusterState, now: float) -> dict[str, float]:
    """Last use by IP: an idle node since it went idle, a busy one now."""
    last_used = dict.fromkeys(cs.ray_nodes, now)
    last_used.update(cs.idle_since)
    return last_used


def node_types(
    cs: ClusterState, runtime: Mapping[str, dict[str, float]] | None = None
) -> dict[str, scheduler.NodeType]:
    """The spec's pod types as the scheduler sees them, with runtime-refreshed resources
    (`runtime`, from `_runtime_resources`; computed here when not given).

    Kept from the last pass while the refreshed resources are the same (they come from
    node totals, which rarely change), so the types of a cluster are built once per spec."""
    assert cs.spec is not None
    if runtime is None:
        runtime = _runtime_resources(cs, cs.load) if cs.load is not None else {}
    memo = cs.types_memo
    if memo is not None and memo[0] == runtime:
        types: dict[str, scheduler.NodeType] = memo[1]
        return types
    types = {
        name: scheduler.NodeType(
            resources=runtime.get(name, t.resources),
            min_workers=t.min_workers,
            max_workers=t.max_workers,
        )
        for name, t in cs.spec.pod_types.items()
    }
    cs.types_memo = (runtime, types)
    return types


def _runtime_resources(cs: ClusterState, load: ev.RayLoad) -> dict[str, dict[str, float]]:
    """Ray's `_update_node_resources_from_runtime`: a type's CPU/GPU/memory are refreshed from
    the totals of its first live node in the report (a worker's totals win over the head's)."""
    assert cs.spec is not None
    types = cs.spec.pod_types
    out: dict[str, dict[str, float]] = {}
    done: set[str] = set()
    wanted = sum(1 for n in cs.live.values() if n > 0)  # types with live workers
    head_seen = not cs.head
    if head_seen and not wanted:
        return out
    get = cs.live_ips.get
    worker = ev.WORKER
    for node, _ in cs.ray_nodes.values():
        pod = get(node.ip)
        if pod is None:
            continue
        pod_type, total = pod.pod_type, node.total
        if pod_type in done or not total or pod_type not in types:
            continue
        resources = dict(out.get(pod_type, types[pod_type].resources))
        for key in _REFRESHED:
            if key in total:
                resources[key] = total[key]
        out[pod_type] = resources
        if pod.role == worker:
            done.add(pod_type)
        else:
            head_seen = True
        if head_seen and len(done) >= wanted:
            break
    return out


_REFRESHED = ("CPU", "GPU", "memory")


def may_terminate(cs: ClusterState, now: float, *, idle: bool) -> bool:
    """Whether `_enforce` could remove anything: without an idle worker past the timeout, an
    outdated one or a count above a maximum, it keeps every worker (read off its rules)."""
    spec = cs.spec
    assert spec is not None
    if cs.outdated > 0 or cs.live_total > spec.max_workers:
        return True
    if idle and least_recent_use(cs) < now - cs.idle_timeout:
        return True
    types = spec.pod_types
    return any(n > types[t].max_workers for t, n in cs.live.items() if t in types)


def may_launch_beyond_min(cs: ClusterState) -> bool:
    """Whether the scheduler could launch more than the min-workers top-up.

    Without requests or placement groups, Ray adds nodes for tasks only with pending
    demand, room under the global maximum (`max_workers + 1 - nodes`, head counted) and a
    type below its own maximum; otherwise its launch equals the min-workers top-up, which
    the planner's cheap path computes from counters.
    """
    spec, load = cs.spec, cs.load
    assert spec is not None
    if load is None or not (load.pending or load.requests or load.placement_groups):
        return False
    if load.requests or load.placement_groups:
        return True
    inflight = cs.inflight
    if cs.live_total + sum(inflight.values()) >= spec.max_workers:
        return False
    live = cs.live
    if not any(
        live.get(name, 0) + inflight.get(name, 0) < t.max_workers
        for name, t in spec.pod_types.items()
    ):
        return False
    return not _fits_free_capacity(cs, load.pending)


def _fits_free_capacity(cs: ClusterState, pending: tuple[ev.Bundle, ...]) -> bool:
    """Whether pending tasks of one shape all fit on what connected nodes have free.

    The scheduler packs the demand first-fit onto every node it lists, connected ones with
    their free resources among them; with one shape, every node takes as many as fit
    whatever the order, so when the connected nodes alone take all of it nothing is left
    to launch for. The free totals rule most busy clusters out at once; walking the report
    stops as soon as the demand is placed (usually on the first nodes). Several shapes can
    pack differently on more nodes: no shortcut then.
    """
    shape = pending[0].resources
    left = 0
    for bundle in pending:
        if bundle.resources != shape:
            return False
        left += bundle.count
    if left <= 0:
        return True
    free = cs.free_total
    for k, v in shape.items():  # a bound first: the sums over all reported nodes
        if v > 0 and not k.startswith(scheduler.IMPLICIT_PREFIX) and free.get(k, 0.0) < v * left:
            return False
    assert cs.spec is not None
    types = cs.spec.pod_types
    live_ips = cs.live_ips
    for ip, available in cs.node_free.items():
        pod = live_ips.get(ip)
        if pod is None or pod.pod_type not in types:
            continue
        if not available:
            return False  # the scheduler stops a group at an empty node: keep its rule
        left -= scheduler.fit_count(available, shape, left)
        if left <= 0:
            return True
    return False


def update(cs: ClusterState, now: float, *, idle: bool, enforce: bool = True) -> Decision:
    """Decide terminations and launches for one cluster whose head is up.

    The nodes come from the last load report (connected pods, with their free resources),
    then the live pods Ray has not reported (their type's resources), grouped by type: the
    same multiset Ray's scheduler would see, listed in the report's order.
    """
    spec = cs.spec
    assert spec is not None
    load = cs.load
    types = node_types(cs, _runtime_resources(cs, load) if load is not None else {})
    terminate: list[tuple[str, str]] = []
    surge: dict[str, int] = {}
    going = _going(cs) if cs.draining or cs.drained else set()
    if enforce:
        deleting = cs.deleting
        dead = ev.DEAD_PHASES
        workers = [
            p for p in cs.pods.values()
            if p.role == ev.WORKER and not p.terminating and p.phase not in dead
            and p.name not in deleting and p.name not in going
        ]
        held = {n for n, until in cs.held.items() if now < until} if cs.held else set()
        terminate, surge = constraints.enforce(cs, types, workers,
                                    last_use(cs, now) if load is not None else {}, now,
                                    idle=idle, held=held)
    removed = {name for name, _ in terminate}
    runs, counts, connected = _node_runs(cs, types, removed | going)
    for name in going.union(n for n in removed if drains.needs_drain(cs, cs.pods[n])):
        pod_type = cs.pods[name].pod_type  # drained first: there until Ray lets it go, so
        if pod_type in types:  # it counts against the maxima, though nothing is packed on it
            counts[pod_type] = counts.get(pod_type, 0) + 1
    launch = scheduler.decide(
        types=_available(cs, types, counts, now) if cs.unavailable else types,
        head_type=spec.head_pod_type,
        max_workers=spec.max_workers,
        upscaling_speed=spec.upscaling_speed,
        node_resources=runs,
        counts=counts,
        launching={t: n for t, n in cs.inflight.items() if n > 0},
        demand=scheduler.group([(b.resources, b.count) for b in load.pending]) if load else [],
        placement_groups=[(g.strategy, g.bundles) for g in load.placement_groups] if load else (),
        requests=scheduler.group([(b.resources, b.count) for b in load.requests]) if load else [],
        connected=connected,
    )
    to_launch = dict(launch.to_launch)
    out_of = stuck.unavailable(cs, now) if cs.unavailable else set()
    for pod_type, n in surge.items():  # a rolling update's replacements, ahead
        if pod_type not in out_of:
            to_launch[pod_type] = max(to_launch.get(pod_type, 0), n)
    if not cs.head:  # the planner runs a pass only with a head; never launch one from here
        to_launch.pop(spec.head_pod_type, None)
    return Decision(terminate=tuple(terminate), launch=to_launch, unfulfilled=launch.unfulfilled,
                    types=types)


def _available(cs: ClusterState, types: Mapping[str, scheduler.NodeType],
               counts: Mapping[str, int], now: float) -> dict[str, scheduler.NodeType]:
    """The types as the scheduler may launch them: one unavailable now (its pods did not
    start, `engine.stuck`) has no room and no minimum, so demand goes to another type."""
    out = dict(types)
    for name in stuck.unavailable(cs, now):
        t = types.get(name)
        if t is not None:
            top = counts.get(name, 0) + cs.inflight.get(name, 0)
            out[name] = scheduler.NodeType(resources=t.resources, min_workers=0,
                                           max_workers=min(top, t.max_workers))
    return out


def _going(cs: ClusterState) -> set[str]:
    """Live workers being drained (`engine.drains`): on their way out, so no pass decides
    about them again or packs demand onto them (Ray places nothing on a draining node)."""
    out = set()
    for name in (*cs.draining, *cs.drained):
        pod = cs.pods.get(name)
        if pod is not None and pod.live and name not in cs.deleting:
            out.add(name)
    return out


def _node_runs(
    cs: ClusterState, types: Mapping[str, scheduler.NodeType], gone: set[str]
) -> tuple[list[Run], dict[str, int], dict[str, int]]:
    """The nodes the scheduler sees, as runs of equal free resources (`engine.packing.Run`).

    First the nodes of the last load report that are live pods (not removed by this pass),
    with their free resources, in the report's order; then the live pods Ray has not
    reported, their type's resources, grouped by type: the same multiset and order Ray's
    scheduler would see. Built in one walk of the report (the hottest loop of a pass).
    Returns the runs, the nodes per known type and the connected nodes per type.
    """
    frees = cs.node_free
    joined = cs.connected
    load = cs.load
    if (not gone and len(cs.joined) == len(frees) and joined.keys() <= types.keys()
            and (load is None or not load.requests)):
        # Every reported node is a live pod of a known type: the report is the node list,
        # and the connected counts are kept as pods and reports fold (`state.joined`).
        # Their order differs from the report's, which only `request_resources` reads.
        runs: list[Run] = [
            Run(free, len(list(same))) for free, same in groupby(frees.values())
        ]
        connected = dict(joined)
        counts = dict(joined)
    else:
        runs, counts, connected = _walk_report(cs, types, gone)
    unreported = dict(cs.live)
    if cs.head:
        head_type = cs.pods[cs.head].pod_type
        unreported[head_type] = unreported.get(head_type, 0) + 1
    for t, n in connected.items():
        unreported[t] -= n
    for name in gone:  # removed by this pass: left out of both parts
        unreported[cs.pods[name].pod_type] -= 1
    for t, n in unreported.items():
        cfg = types.get(t)
        if n <= 0 or cfg is None:
            continue
        resources = cfg.resources
        if runs and runs[-1].resources == resources:
            runs[-1].count += n
        else:
            runs.append(Run(resources, n))
        counts[t] = counts.get(t, 0) + n
    return runs, counts, connected


def _walk_report(
    cs: ClusterState, types: Mapping[str, scheduler.NodeType], gone: set[str]
) -> tuple[list[Run], dict[str, int], dict[str, int]]:
    """The reported nodes that are live pods of known types, not removed by this pass."""
    frees = cs.node_free
    pods = list(map(cs.live_ips.get, frees))  # the walk runs in C
    if gone:
        pods = [None if pod is None or pod.name in gone else pod for pod in pods]
    connected: dict[str, int] = Counter(map(_pod_type, filter(None, pods)))
    if connected.keys() <= types.keys():
        counts = dict(connected)
    else:  # a pod of a type gone from the spec: no node
        pods = [None if pod is None or pod.pod_type not in types else pod for pod in pods]
        counts = {t: c for t, c in connected.items() if t in types}
    runs: list[Run] = [
        Run(free, len(list(same))) for free, same in groupby(compress(frees.values(), pods))
    ]
    return runs, counts, connected
