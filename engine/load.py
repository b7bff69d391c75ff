"""The Ray-load fold: what each head reports (demand, nodes, idle times), and losing it.

The hottest fold of a replay with Ray load, so a node whose free resources did not change
costs a comparison, and a report that repeats a settled cluster's inputs costs less than
one (`load_changes_nothing`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from engine import claiming
from engine import events as ev
from engine import lifecycle as lc
from engine.phases import Phase
from engine.records import ClusterState, State
from engine.transitions import Trigger


def ray_load(state: State, event: ev.RayLoad) -> None:
    """Keep the demand and fold the node states (complete, or the changes of a partial
    report); keep the least recent use of any idle worker, for the shortcut.

    The hottest fold of a replay with Ray load: a node whose free resources did not change
    is not taken out of the free sums and added again, and the least recent use is
    recomputed only when the node holding it changed (else it is a running minimum).
    """
    cs = state.clusters.get(event.cluster)
    if cs is None:
        return
    if cs.settled and _load_changes_nothing(state, cs, event):
        cs.load = event  # the same demand: kept as the latest report (snapshots show it)
        return
    cs.settled = False
    cs.load = event
    cs.load_fresh = True
    cs.needs_update = True
    state.dirty[cs.key] = None
    nodes, idle_since, free, frees = cs.ray_nodes, cs.idle_since, cs.free_total, cs.node_free
    joined, connected = cs.joined, cs.connected
    rescan = False
    if event.partial:
        oldest = least_recent_use(cs)
    else:
        nodes.clear()
        frees.clear()
        idle_since.clear()
        free.clear()
        joined.clear()
        connected.clear()
        oldest = math.inf
        cs.idle_stale = False
    for ip in event.gone:
        old = nodes.pop(ip, None)
        if old is not None:
            del frees[ip]
            add_free(free, old[0].available, -1.0)
            if ip in joined:
                unjoin(cs, ip)
        since = idle_since.pop(ip, None)
        if since is not None and since <= oldest:
            rescan = True
    if not event.nodes:
        if rescan:
            oldest = min(idle_since.values(), default=math.inf)
        cs.oldest_use = oldest
        return
    at = event.at
    head = cs.pods.get(cs.head) if cs.head else None
    head_ip = head.ip if head is not None else None
    live = cs.live_ips.get
    for node in event.nodes:
        ip = node.ip
        available = node.available
        old = nodes.get(ip)
        if old is None:
            add_free(free, available, 1.0)
            pod = live(ip)
            if pod is not None:  # _join, inlined: a new node's IP is not joined yet
                pod_type = pod.pod_type
                joined[ip] = pod_type
                connected[pod_type] = connected.get(pod_type, 0) + 1
        elif (before_free := old[0].available) is not available and before_free != available:
            add_free(free, before_free, -1.0)
            add_free(free, available, 1.0)
        nodes[ip] = (node, at)
        frees[ip] = available
        if node.idle_seconds > 0 and ip != head_ip:
            since = at - node.idle_seconds
            before = idle_since.get(ip)
            idle_since[ip] = since
            if before is not None and before <= oldest and since > before:
                rescan = True
            elif since < oldest:
                oldest = since
        else:
            before = idle_since.pop(ip, None)
            if before is not None and before <= oldest:
                rescan = True
    if rescan:
        oldest = min(idle_since.values(), default=math.inf)
    cs.oldest_use = oldest


def _load_changes_nothing(state: State, cs: ClusterState, event: ev.RayLoad) -> bool:
    """Whether a full autoscaler pass after this report would surely decide nothing.

    `settled` says the cluster's last plan was a full pass that asked for nothing (no
    action, no timer, a current status) and no event about the cluster came since. A
    report that changes no node and repeats the demand leaves that pass's inputs as they
    were, except the time: an idle worker may pass its timeout, a lease may lapse. When
    neither can happen, the pass would decide nothing again, so it is skipped, and the
    state is left as that pass would leave it (`load_fresh` and `needs_update` stay
    cleared). Ray heads report every few seconds and a settled cluster's reports repeat;
    this makes each one cost a comparison (`tests/engine/test_shortcuts.py` checks the
    decisions against planning everything after every event).
    """
    if not event.partial or event.nodes or event.gone or state.exhaustive:
        return False
    if cs.key in state.dirty or cs.spec is None:
        return False
    if least_recent_use(cs) < event.at - cs.idle_timeout:
        return False
    me = state.install
    if me is not None:
        claim = cs.claim
        if (claim is None or claim.install != me.name or claim.handoff is not None
                or claim.contenders or cs.claim_confirmed != claim.fence
                or not claiming.lease_fresh(state, cs.key[0], event.at)):
            return False
    old = cs.load
    if old is None or not _same_bundles(old.pending, event.pending):
        return False
    if (old.requests or event.requests) and not _same_bundles(old.requests, event.requests):
        return False
    return not (old.placement_groups or event.placement_groups) or _same_groups(
        old.placement_groups, event.placement_groups)


def _same_bundles(a: tuple[ev.Bundle, ...], b: tuple[ev.Bundle, ...]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.count != y.count or x.resources != y.resources:
            return False
    return True


def _same_groups(a: tuple[ev.PlacementGroup, ...], b: tuple[ev.PlacementGroup, ...]) -> bool:
    if len(a) != len(b):
        return False
    return all(x.strategy == y.strategy and tuple(x.bundles) == tuple(y.bundles)
               for x, y in zip(a, b, strict=True))


def forget_idle(cs: ClusterState, ip: str) -> None:
    """A node left: drop its idle time, and find the least recent use again if it held it."""
    since = cs.idle_since.pop(ip, None)
    if since is not None and since <= cs.oldest_use:
        cs.idle_stale = True  # found again when next read: a burst of deletes scans once


def least_recent_use(cs: ClusterState) -> float:
    """The least recent last-use time of any idle worker (inf: none is idle)."""
    if cs.idle_stale:
        cs.oldest_use = min(cs.idle_since.values(), default=math.inf)
        cs.idle_stale = False
    return cs.oldest_use


def add_free(free: dict[str, float], available: Mapping[str, float], sign: float) -> None:
    """Add (sign 1) or remove (sign -1) one node's free resources to the cluster's sums.

    The sums bound what the connected nodes can take, so the planner can tell at once that
    pending tasks cannot all fit (`engine.autoscaler`); negative values count as zero.
    """
    for k, v in available.items():
        if v > 0:
            free[k] = free.get(k, 0.0) + sign * v


def ray_unreachable(state: State, event: ev.RayUnreachable) -> None:
    cs = state.clusters.get(event.cluster)
    if cs is None or cs.spec is None or cs.phase is Phase.NONE or cs.phase is Phase.ERROR:
        return
    cs.settled = False
    cs.restart_head = bool(cs.head)
    cs.load = None
    cs.ray_nodes.clear()
    cs.node_free.clear()
    cs.free_total.clear()
    cs.joined.clear()
    cs.connected.clear()
    cs.idle_since.clear()
    cs.oldest_use = math.inf
    cs.idle_stale = False
    lc.move(state, cs, Trigger.AUTOSCALING_FAILED, event.at)
    lc.mark(state, cs.key)


def unindex(cs: ClusterState, pod: ev.PodSeen) -> None:
    entry = cs.live_ips.get(pod.ip) if pod.ip else None
    if entry is not None and entry.name == pod.name:
        del cs.live_ips[pod.ip]
        if pod.ip in cs.joined:
            unjoin(cs, pod.ip)


def index(cs: ClusterState, ip: str, pod: ev.PodSeen) -> None:
    """Name `pod` as the live pod at `ip`; a node reported there joins it."""
    cs.live_ips[ip] = pod
    if ip in cs.node_free:
        _join(cs, ip, pod.pod_type)


def _join(cs: ClusterState, ip: str, pod_type: str) -> None:
    """A reported node and a live pod meet at `ip` (`joined` and `connected` follow both
    maps as they change, so a pass need not walk the report to count connected nodes)."""
    before = cs.joined.get(ip)
    if before == pod_type:
        return
    if before is not None:
        unjoin(cs, ip)
    cs.joined[ip] = pod_type
    cs.connected[pod_type] = cs.connected.get(pod_type, 0) + 1


def unjoin(cs: ClusterState, ip: str) -> None:
    pod_type = cs.joined.pop(ip, None)
    if pod_type is None:
        return
    left = cs.connected[pod_type] - 1
    if left:
        cs.connected[pod_type] = left
    else:
        del cs.connected[pod_type]


def rejoin(cs: ClusterState) -> None:
    """Rebuild `joined` and `connected` from the report and the IP index (after a restore)."""
    cs.joined.clear()
    cs.connected.clear()
    get = cs.live_ips.get
    for ip in cs.node_free:
        pod = get(ip)
        if pod is not None:
            _join(cs, ip, pod.pod_type)
