"""The pod fold: pods seen and gone, creates and deletes in flight, and the counters.

Incremental counters: per cluster and pod type, the number of live workers and of creates
in flight are kept up to date by every event, so deciding after a pod event never rescans a
cluster's pods (B2 in bench/). A pod's contribution to the counters is a function of the
pod record and of whether the operator is deleting it; `account` and `unaccount` are the
only places that apply it. The IP index (`live_ips`) and the pods joined to Ray's nodes
(`joined`, `connected`) follow the same events.
"""

from __future__ import annotations

import math

from engine import drains, load, stuck
from engine import events as ev
from engine import lifecycle as lc
from engine.phases import Phase
from engine.records import CREATE_EXPECTATION_TTL, STATUS_PERIOD, ClusterState, Creating, State
from engine.transitions import Trigger


def account(cs: ClusterState, pod: ev.PodSeen) -> None:
    if pod.name in cs.deleting:
        return
    if pod.terminating or pod.phase in ev.DEAD_PHASES:
        if not pod.terminating:
            cs.dead[pod.name] = None
        return
    if pod.ip:
        load.index(cs, pod.ip, pod)
    if pod.role == ev.HEAD:
        cs.head = pod.name
        cs.head_running = pod.phase == ev.RUNNING
        lc.check_head(cs)
    else:
        _count_worker(cs, pod)


def _count_worker(cs: ClusterState, pod: ev.PodSeen) -> None:
    """A live worker joins the counters."""
    cs.live[pod.pod_type] = cs.live.get(pod.pod_type, 0) + 1
    cs.live_total += 1
    if _outdated(cs, pod):
        cs.outdated += 1


def _outdated(cs: ClusterState, pod: ev.PodSeen) -> bool:
    """A worker whose type is gone from the spec or whose launch config changed."""
    if cs.spec is None:
        return False
    t = cs.spec.pod_types.get(pod.pod_type)
    return t is None or t.launch_hash != pod.launch_hash


def recount(cs: ClusterState) -> None:
    """Recompute the outdated-worker count after the spec changed (O(pods), rare)."""
    cs.outdated = sum(
        1 for p in cs.pods.values()
        if p.role == ev.WORKER and p.live and p.name not in cs.deleting and _outdated(cs, p)
    )


def unaccount(cs: ClusterState, pod: ev.PodSeen) -> None:
    if pod.name in cs.deleting:
        return
    if pod.terminating or pod.phase in ev.DEAD_PHASES:
        cs.dead.pop(pod.name, None)
        return
    load.unindex(cs, pod)
    if pod.role == ev.HEAD:
        if cs.head == pod.name:
            cs.head = ""
            cs.head_running = False
            cs.head_current = False
    else:
        cs.live[pod.pod_type] -= 1
        cs.live_total -= 1
        if _outdated(cs, pod):
            cs.outdated -= 1


def pod_seen(state: State, event: ev.PodSeen) -> None:
    cs = state.clusters.get(event.cluster) or lc.cluster(state, event.cluster)
    cs.settled = False
    name = event.name
    pods = cs.pods
    old = pods.get(name)
    pods[name] = event
    if old is None:
        if event.role == ev.WORKER and _seen_created_worker(state, cs, event):
            return
    elif event.role == ev.WORKER and _same_contribution(old, event):
        if old.ip != event.ip and not event.terminating and event.phase not in ev.DEAD_PHASES \
                and name not in cs.deleting:
            if old.ip:
                load.unindex(cs, old)  # the IP index names the pod by IP; only a new IP moves it
            if event.ip:
                load.index(cs, event.ip, event)
        if (cs.type_failures or cs.outdated) and old.phase != event.phase:
            if event.phase == ev.RUNNING:
                stuck.ran(cs, event.pod_type)
            if cs.outdated:  # a rolling update waits on it
                cs.needs_update = True
                lc.mark(state, cs.key)
        return  # e.g. Pending -> Running: nothing else a decision reads has changed
    was_head = cs.head == name
    quiet = False
    if old is None:
        quiet = _first_sight(cs, event)
    else:
        unaccount(cs, old)
    account(cs, event)
    if event.role == ev.HEAD:
        _head_changed(state, cs, event, was_head=was_head)
    if not quiet:
        lc.mark(state, cs.key)


def _seen_created_worker(state: State, cs: ClusterState, event: ev.PodSeen) -> bool:
    """The first sight of a live worker this operator created (the common case, inlined):
    it moves from in flight to live. Returns False, changing nothing, for any other pod."""
    name = event.name
    creating = cs.creating.get(name)
    if (creating is None or creating.role != ev.WORKER or event.terminating
            or event.phase in ev.DEAD_PHASES or name in cs.deleting):
        return False
    del cs.creating[name]
    cs.inflight[creating.pod_type] -= 1
    if event.ip:
        load.index(cs, event.ip, event)
    _count_worker(cs, event)
    if not _status_waits(cs, event.at):
        state.dirty[cs.key] = None
    return True


def _status_waits(cs: ClusterState, at: float) -> bool:
    """Whether the status counts wait for a status timer already set (a worker moving from
    in flight to live then changes no decision)."""
    sent_at = cs.status_sent_at
    return (cs.status_sent is not None and cs.wake_pending <= sent_at + STATUS_PERIOD
            and at < sent_at + STATUS_PERIOD)


def _same_contribution(old: ev.PodSeen, new: ev.PodSeen) -> bool:
    """Whether two records of one worker count the same (live, dead or terminating)."""
    return (
        old.terminating == new.terminating
        and (old.phase in ev.DEAD_PHASES) == (new.phase in ev.DEAD_PHASES)
        and old.pod_type == new.pod_type
    ) or (old.terminating and new.terminating)


def _first_sight(cs: ClusterState, event: ev.PodSeen) -> bool:
    """Take a new pod in; return whether no decision can change because of it.

    A live worker the operator created moves from in flight to live: the min-workers top-up
    reads their sum, and the status counts wait for a status timer that is already set.
    """
    if event.name in cs.creating:  # ours: the name counter is already past it
        quiet = event.role == ev.WORKER and event.live and _status_waits(cs, event.at)
        drop_creating(cs, event.name)
        return quiet
    suffix = event.name.rpartition("-")[2]
    if suffix.isdigit() and int(suffix) >= cs.counter:
        cs.counter = int(suffix) + 1
    return False


def _head_changed(state: State, cs: ClusterState, pod: ev.PodSeen, *, was_head: bool) -> None:
    if cs.spec is None or cs.phase is Phase.NONE:
        return
    if cs.head == pod.name:
        if cs.head_running:
            lc.settle(state, cs, pod.at)
        return
    if was_head and pod.name not in cs.deleting:
        lc.move(state, cs, Trigger.HEAD_LOST, pod.at)


def pod_gone(state: State, event: ev.PodGone) -> None:
    cs = state.clusters.get(event.cluster)
    if cs is None:
        return
    cs.settled = False
    pod = cs.pods.pop(event.name, None)
    ours = cs.deleting.pop(event.name, None) is not None
    drains.forget(cs, event.name)
    if pod is None:
        drop_creating(cs, event.name)
        return
    lost_head = pod.role == ev.HEAD and cs.head == pod.name and not ours
    if pod.ip and (entry := cs.ray_nodes.pop(pod.ip, None)) is not None:
        del cs.node_free[pod.ip]
        if pod.ip in cs.joined:
            load.unjoin(cs, pod.ip)
        load.add_free(cs.free_total, entry[0].available, -1.0)
        load.forget_idle(cs, pod.ip)
    if ours:
        if cs.outdated:  # a rolling update may go on
            cs.needs_update = True
            lc.mark(state, cs.key)
        return  # uncounted since the delete was recorded: no other decision changes
    unaccount(cs, pod)
    if lost_head and cs.spec is not None and cs.phase is not Phase.NONE:
        lc.move(state, cs, Trigger.HEAD_LOST, event.at)
    lc.mark(state, cs.key)


def expire_creates(state: State, cs: ClusterState, now: float) -> None:
    """Forget acknowledged creates never observed within the TTL (the pod vanished unseen)."""
    oldest = math.inf
    for name, creating in list(cs.creating.items()):
        if not creating.acked:
            continue
        if now - creating.issued_at >= CREATE_EXPECTATION_TTL:
            drop_creating(cs, name)
        else:
            oldest = min(oldest, creating.issued_at)
    if oldest < math.inf:
        cs.expiry_at = oldest + CREATE_EXPECTATION_TTL
        lc.wake(state, cs.key, cs.expiry_at)


def drop_creating(cs: ClusterState, name: str) -> None:
    creating = cs.creating.pop(name, None)
    if creating is None:
        return
    if creating.role == ev.WORKER:
        cs.inflight[creating.pod_type] -= 1
    elif cs.head_creating == name:
        cs.head_creating = ""


def add_creating(cs: ClusterState, name: str, pod_type: str, role: str, at: float) -> None:
    """Record a create in flight (the planner decided it)."""
    cs.creating[name] = Creating(pod_type, role, at)
    if role == ev.WORKER:
        cs.inflight[pod_type] = cs.inflight.get(pod_type, 0) + 1
    else:
        cs.head_creating = name
    cs.counter += 1


def add_deleting(cs: ClusterState, name: str, at: float) -> None:
    """Record a delete in flight: the pod stops counting as live at once."""
    pod = cs.pods.get(name)
    if name in cs.deleting:
        return
    drains.forget(cs, name)
    if pod is not None:
        unaccount(cs, pod)
        if pod.role == ev.HEAD:
            cs.restart_head = False
    cs.deleting[name] = at


def rebuild(cs: ClusterState) -> None:
    """Derive every counter and index from the pod records again (after a fault, which
    may have stopped a fold half way)."""
    cs.live.clear()
    cs.live_total = 0
    cs.outdated = 0
    cs.dead.clear()
    cs.live_ips.clear()
    cs.joined.clear()
    cs.connected.clear()
    cs.head = cs.head_creating = ""
    cs.head_running = cs.head_current = False
    cs.inflight = {}
    for name, creating in cs.creating.items():
        if creating.role == ev.WORKER:
            cs.inflight[creating.pod_type] = cs.inflight.get(creating.pod_type, 0) + 1
        else:
            cs.head_creating = name
    for pod in cs.pods.values():
        account(cs, pod)
    cs.broken = False


def service_gone(state: State, event: ev.ServiceGone) -> None:
    cs = state.clusters.get(event.cluster)
    if cs is not None:
        cs.settled = False
        cs.service = ""
        lc.mark(state, cs.key)
