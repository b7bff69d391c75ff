"""What the operator knows, and `evolve`, the one function that changes it.

The state is an aggregate of per-cluster records (`ClusterState`, in `engine.records`).
`evolve(state, event)` folds one observed fact into it, each kind of fact by the module of
its concern (`HANDLERS`): the cluster objects and timers here, pods in `engine.pods`, Ray's
reports in `engine.load`, claims and leases in `engine.claiming`, what became of actions in
`engine.results`. `engine.planner.plan(state, now)` reads the state and returns actions;
`engine.planner.record(state, actions)` folds the decision back in as in-flight
expectations. Nothing else writes to a state.

Ownership rule (docs/decisions.md, "linear state"): `evolve` and `record` update the state
they are given and return it. A caller that needs the old value keeps a snapshot
(`engine.snapshots`), which is immutable and exact. This is what lets one core fold a
million events a second in CPython: copying 1,000 clusters per event would cost 100x more,
while determinism (same events -> same state -> same actions) does not need copies.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Mapping
from typing import Any

from engine import claiming, claims, errors, load, pods, results, status
from engine import events as ev
from engine import lifecycle as lc
from engine import spec as specs
from engine.errors import InvalidSpec
from engine.records import ClusterState as ClusterState
from engine.records import Creating as Creating
from engine.records import OwnLease as OwnLease
from engine.records import Peer as Peer
from engine.records import Rival as Rival
from engine.records import Sent as Sent
from engine.records import Signature as Signature
from engine.records import State as State
from engine.transitions import Trigger


def initial(*, synced: bool = False, exhaustive: bool = False,
            install: claims.Install | None = None) -> State:
    """An empty state; `synced=False` holds every decision until a `Synced` event.

    `exhaustive=True` is the reference the shortcuts are tested against: every cluster is
    planned after every event and every autoscaler pass runs in full. It decides the same
    actions, slower (tests/engine/test_shortcuts.py).

    With an `install`, the engine claims clusters before acting on them and renews its
    leases (`engine.claims`); without one it acts on every cluster it is shown.
    """
    return State(synced=synced, exhaustive=exhaustive, install=install)


def evolve(state: State, event: ev.Event) -> State:
    """Fold one observed fact into the state and return it."""
    if event.at > state.now:
        state.now = event.at
    try:
        HANDLERS[type(event)](state, event)
    except Exception as exc:  # a bulkhead: see `contain`
        contain(state, event, exc)
    return state


# -- bulkheads -------------------------------------------------------------------------------


def contain(state: State, event: ev.Event, exc: Exception) -> None:
    """An event raised while it was folded. No RayCluster's content may crash the engine or
    disturb another cluster, so the fault stays with the cluster it concerns: that cluster
    goes to phase Error naming the exception (its pods are left alone, as for an invalid
    spec) until a new generation of it is seen, and every other cluster goes on. A fault
    outside any cluster (a lease, a timer) drops that event and is logged (`faults`)."""
    key = getattr(event, "cluster", None)
    cs = state.clusters.get(key) if isinstance(key, tuple) else None
    where = f"folding {type(event).__name__}"
    if cs is None:
        state.faults.append(f"{where}: {errors.describe(exc)}")
        state.dirty[("", "")] = None  # so that the next plan logs it
        return
    lc.quarantine(state, cs, event.at, where, exc)


# -- lifecycle -------------------------------------------------------------------------------


# -- cluster events --------------------------------------------------------------------------


def _cluster_seen(state: State, event: ev.ClusterSeen) -> None:
    known = state.clusters.get(event.cluster)
    if known is not None and known.obj is not None and event.uid != known.uid:
        # A new object under the same name: the old one was deleted while the operator did
        # not see it (a watch outage). Nothing known of the old one applies to the new one
        # (its pods, creates in flight, status written, restarts), so it starts afresh.
        _cluster_deleted(state, ev.ClusterDeleted(cluster=event.cluster, at=event.at))
    cs = lc.cluster(state, event.cluster)
    cs.settled = False
    first = cs.obj is None
    cs.obj = event.obj
    if state.install is not None:
        claiming.read_claim(state, cs, event)
        if not first and cs.status_sent is not None:
            _status_written_elsewhere(state, cs, event.obj)
    if not first and event.uid == cs.uid and event.generation == cs.generation:
        return  # status or metadata only
    cs.uid = event.uid
    cs.generation = event.generation
    if first:
        _adopt_status(cs, event.obj)
    if cs.broken:
        pods.rebuild(cs)
    try:
        new = specs.from_raycluster(event.obj, previous=cs.spec)
    except InvalidSpec as exc:
        cs.problems = ""  # a new generation: its own problems, not the last ones
        if exc.whole:  # too deep or too big to keep and copy
            cs.obj = _stand_in(event.obj)
        lc.fail(state, cs, event.at, "InvalidSpec", str(exc))
        return
    except Exception as exc:  # reading it failed in a way no check foresaw: a bulkhead
        cs.problems = ""
        lc.fail(state, cs, event.at, "InternalError",
                f"the RayCluster could not be read: {errors.describe(exc)}")
        return
    old = cs.spec
    if cs.problems or old is None:
        cs.spec_valid_since = event.at
    cs.problems = ""
    cs.error_reason = ""
    head_changed = old is not None and (
        old.head_pod_type != new.head_pod_type or old.head.launch_hash != new.head.launch_hash
    )
    cs.spec = new
    cs.idle_timeout = new.idle_timeout_seconds
    lc.check_head(cs)
    cs.templates = {}
    cs.types_memo = None
    pods.recount(cs)
    cs.needs_update = True
    lc.move(state, cs, Trigger.SPEC_HEAD_CHANGED if head_changed else Trigger.SPEC_ACCEPTED,
            event.at)
    lc.mark(state, cs.key)


def _stand_in(obj: Any) -> dict[str, Any]:
    """What is kept of an object too deep or too big to keep: its identity and claim."""
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    meta = meta if isinstance(meta, Mapping) else {}
    kept = {k: meta[k] for k in ("name", "namespace", "uid", "generation", "resourceVersion")
            if isinstance(meta.get(k), str | int)}
    notes = meta.get("annotations")
    if isinstance(notes, Mapping):
        kept["annotations"] = {k: v for k, v in notes.items()
                               if k in (claims.ANNOTATION, claims.FENCE) and isinstance(v, str)}
    return {"apiVersion": specs.API_VERSION, "kind": specs.KIND, "metadata": kept}


def _adopt_status(cs: ClusterState, obj: Any) -> None:
    """Carry over what an earlier operator wrote: the restart count and the status itself."""
    written = obj.get("status") if isinstance(obj, dict) else None
    if not isinstance(written, dict):
        return
    retries = written.get("autoscalerRetries")
    if isinstance(retries, int) and not isinstance(retries, bool) and retries > 0:
        cs.retries = retries
    workers = written.get("workers")
    cs.status_sent = Sent(status.signature_of(written),
                          dict(workers) if isinstance(workers, dict) else {})


def _status_written_elsewhere(state: State, cs: ClusterState, obj: Any) -> None:
    """The status read names another manager than the one this install last wrote: another
    install wrote it since (the cluster went there and came back). What this install sent
    is not what is there, so it is adopted as sent, and the next plan writes its own."""
    written = obj.get("status") if isinstance(obj, dict) else None
    manager = written.get("managedBy") if isinstance(written, dict) else None
    sent = cs.status_sent
    if isinstance(manager, str) and sent is not None and manager != sent.signature.manager:
        _adopt_status(cs, obj)
        lc.mark(state, cs.key)


def _cluster_deleted(state: State, event: ev.ClusterDeleted) -> None:
    gone = state.clusters.pop(event.cluster, None)
    if gone is not None:
        state.dirty.pop(event.cluster, None)
        state.namespaces[event.cluster[0]] -= 1
        if gone.obj is not None:  # the next plan says so
            state.farewells.append(event.cluster)
            state.dirty[("", "")] = None


# -- pod events ------------------------------------------------------------------------------


# -- Ray load --------------------------------------------------------------------------------


def _tick(state: State, event: ev.Tick) -> None:
    timers = state.timers
    while timers and timers[0][0] <= event.at:
        _, _, key = heapq.heappop(timers)
        cs = state.clusters.get(key)
        if cs is not None:
            try:
                if cs.wake_pending <= event.at:
                    cs.wake_pending = math.inf
                if cs.stuck_due <= event.at:  # a worker may be stuck: a full pass looks
                    cs.needs_update = True
                if cs.expiry_at <= event.at:
                    cs.expiry_at = math.inf
                    pods.expire_creates(state, cs, event.at)
                lc.settle(state, cs, event.at)
            except Exception as exc:  # a bulkhead: the other timers still fire
                lc.quarantine(state, cs, event.at, "firing its timer", exc)
            lc.mark(state, key)


# -- results of earlier actions --------------------------------------------------------------


def _synced(state: State, event: ev.Synced) -> None:
    state.synced = True
    state.dirty.update(dict.fromkeys(state.clusters))


HANDLERS: dict[type, Callable[[State, Any], None]] = {
    ev.ClusterSeen: _cluster_seen,
    ev.ClusterDeleted: _cluster_deleted,
    ev.PodSeen: pods.pod_seen,
    ev.PodGone: pods.pod_gone,
    ev.RayLoad: load.ray_load,
    ev.RayUnreachable: load.ray_unreachable,
    ev.Tick: _tick,
    ev.ActionResult: results.action_result,
    ev.ServiceGone: pods.service_gone,
    ev.Synced: _synced,
    ev.LeaseSeen: claiming.lease_seen,
    ev.LeaseGone: claiming.lease_gone,
}


