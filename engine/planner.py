"""Deciding: `plan(state, now)` reads the state and returns actions; `record` folds them back.

The split follows Ray autoscaler v2's observe-then-decide: `engine.state.evolve` mirrors the
world (passive), `plan` decides (active), level-based: it looks only at the current state,
never at the event that woke it, so the same state always gives the same actions.

`plan` looks at the clusters that changed since the last `record` (the state's dirty set)
and at those whose timers fired; a cluster nothing happened to would plan nothing new,
because everything it asked for is in flight. Per cluster, in order:
1. an invalid spec: only the status (phase Error with every problem), a Warning Event and a
   log line; pods are left alone;
2. the head Service, once per generation;
3. the head pod: create it (after the recovery backoff), or replace it when its config is
   outdated or Ray on it failed;
4. dead pods (Failed/Succeeded, restartPolicy Never) are deleted;
5. workers, once the head runs: a full autoscaler pass (`engine.autoscaler`) when a load
   report, a spec change or a timer asks for one, else only the cheap min-workers top-up
   from counters, so a pod event costs O(pod types);
6. the status, at once when the phase, restarts, generation or head readiness change, and
   worker counts at most every `STATUS_PERIOD` seconds.

`record(state, actions)` must follow every `plan` before the next `evolve`: it turns creates
and deletes into in-flight expectations, so no interleaving of stale views can make the
engine exceed a maximum or delete a pod twice. `step` does the three together.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from engine import actions as act
from engine import autoscaler, claiming, demand, drains, errors, manifests, pods, status, stuck
from engine import events as ev
from engine import lifecycle as lc
from engine import state as st
from engine.phases import Phase
from engine.scheduler import NodeType
from engine.spec import PodType

NO_CLUSTER = claiming.NO_CLUSTER


def plan(state: st.State, now: float) -> tuple[act.Action, ...]:
    """The actions to take now for every cluster that changed or is due."""
    if not state.synced:
        return ()
    out: list[act.Action] = []
    clusters = state.clusters
    if state.faults:
        _plan_faults(state, out)
    for key in state.farewells:
        out.append(act.Log(cluster=key, level="INFO", message=(
            "deleted: the operator forgets it (Kubernetes deletes its pods and Service, "
            "which it owns)")))
    if state.install is not None and now >= state.lease_due:
        claiming.plan_leases(state, now, out)
    if state.exhaustive:
        for cs in clusters.values():
            _plan_guarded(state, cs, now, out, exhaustive=True)
        return tuple(out)
    dirty = state.dirty
    keys = dirty if len(dirty) < 2 else sorted(
        (k for k in dirty if k in clusters), key=lambda k: clusters[k].seq
    )
    for key in keys:
        found = clusters.get(key)
        if found is not None:
            _plan_guarded(state, found, now, out)
    return tuple(out)


def _plan_guarded(state: st.State, cs: st.ClusterState, now: float, out: list[act.Action],
                  *, exhaustive: bool = False) -> None:
    """Plan one cluster behind a bulkhead: if deciding for it raises (nothing it contains
    may crash the engine), none of its actions of this plan go out, and it is planned again
    in phase Error, which writes only its status and a Warning Event."""
    start = len(out)
    try:
        _plan_cluster(state, cs, now, out, exhaustive=exhaustive)
    except Exception as exc:
        del out[start:]
        lc.quarantine(state, cs, now, "planning", exc)
        try:
            _plan_cluster(state, cs, now, out)
        except Exception as again:  # even its status cannot be planned: log it, and wait
            del out[start:]
            state.faults.append(f"{act.prefix(cs.key)} planning its status failed too: "
                                f"{errors.describe(again)}")


def _plan_faults(state: st.State, out: list[act.Action]) -> None:
    """Log the faults contained outside any cluster since the last plan."""
    for fault in state.faults:
        out.append(act.Log(cluster=NO_CLUSTER, level="ERROR", message=f"{_CONTAINED}{fault}"))


_CONTAINED = "contained: "


def _record_faults(state: st.State, actions: tuple[act.Action, ...]) -> None:
    """The faults just logged are done with (any contained while planning stay for the
    next plan)."""
    for action in actions:
        if type(action) is act.Log and action.cluster == NO_CLUSTER \
                and action.message.startswith(_CONTAINED):
            fault = action.message.removeprefix(_CONTAINED)
            if fault in state.faults:
                state.faults.remove(fault)


def record(state: st.State, actions: tuple[act.Action, ...]) -> st.State:
    """Fold the decision just planned into the state as in-flight expectations."""
    now = state.now
    clusters = state.clusters
    if state.synced:
        if state.faults:
            _record_faults(state, actions)
        state.farewells.clear()
        if state.install is not None and now >= state.lease_due and state.rivals:
            claiming.record_rivals(state, now)
        for key in clusters if state.exhaustive else state.dirty:
            cs = clusters.get(key)
            if (cs is not None and _full_pass_due(cs) and now >= cs.retry_at
                    and claiming.may_act(state, cs, now)):
                cs.needs_update = False
                cs.load_fresh = False
                stuck.after_pass(cs, now)
    moved: dict[ev.ClusterKey, None] = {}
    timed: dict[ev.ClusterKey, None] = {}  # clusters whose creates set the stuck timer
    cs = None
    last: ev.ClusterKey | None = None
    create, delete, lease = act.CreatePod, act.DeletePod, act.RenewLease
    for action in actions:
        kind = type(action)  # every action class is final: `is` tells them apart
        if kind is lease:
            claiming.record_lease(state, action, now)  # type: ignore[arg-type]
            continue
        if action.cluster is not last:  # actions come grouped by cluster: one lookup each
            last = action.cluster
            cs = clusters.get(last)
        if cs is None:
            continue
        try:
            if kind is create:
                pods.add_creating(cs, action.name, action.pod_type, action.role, now)  # type: ignore[union-attr]
                if cs.stuck_due > now and cs.key not in timed:  # the first create: it must
                    timed[cs.key] = None  # start by now + the timeout (the others too)
                    stuck.created(state, cs, now)
                moved[cs.key] = None
            elif kind is delete:
                pods.add_deleting(cs, action.name, now)  # type: ignore[union-attr]
                if action.reason == stuck.STUCK:  # type: ignore[union-attr]
                    stuck.record(state, cs, action, now)  # type: ignore[arg-type]
                moved[cs.key] = None
            else:
                _RECORDERS[kind](state, cs, action, now, moved)
        except Exception as exc:  # a bulkhead, as in `plan`
            lc.quarantine(state, cs, now, f"recording {kind.__name__}", exc)
    if state.synced:
        state.dirty.clear()
        state.dirty.update(moved)  # counts moved: the status may follow
        if state.install is not None and now >= state.lease_due:
            state.lease_due = claiming.next_lease_due(state)
    return state


def _record_service(state: st.State, cs: st.ClusterState, action: Any, now: float,
                    moved: dict[ev.ClusterKey, None]) -> None:
    cs.service_inflight = service_signature(cs)


def _record_requeue(state: st.State, cs: st.ClusterState, action: Any, now: float,
                    moved: dict[ev.ClusterKey, None]) -> None:
    lc.push_timer(state, cs.key, action.at)
    cs.wake_pending = min(cs.wake_pending, action.at)
    if cs.announce <= action.at:
        cs.announce = math.inf


def _record_nothing(state: st.State, cs: st.ClusterState, action: Any, now: float,
                    moved: dict[ev.ClusterKey, None]) -> None:
    return


def _record_event(state: st.State, cs: st.ClusterState, action: Any, now: float,
                  moved: dict[ev.ClusterKey, None]) -> None:
    if cs.notices:  # a notice told is done with
        told = (action.type, action.reason, action.message)
        cs.notices = [n for n in cs.notices if n != told]


_RECORDERS: dict[type, Any] = {
    act.ApplyService: _record_service,
    act.PatchStatus: status.record_status,
    act.Requeue: _record_requeue,
    act.EmitEvent: _record_event,
    act.Log: _record_nothing,
    act.WriteClaim: claiming.record_claim,
    act.DrainNode: drains.record_drain,
}


def step(state: st.State, event: ev.Event) -> tuple[st.State, tuple[act.Action, ...]]:
    """Fold one event, plan at its time and record the plan: the driver's unit of work.

    `evolve` is inlined, and a state with nothing dirty, no lease due and no exhaustive
    mode plans nothing, so most events (a pod seen, a result) cost one handler call.
    """
    at = event.at
    if at > state.now:
        state.now = at
    try:
        _HANDLERS[type(event)](state, event)
    except Exception as exc:  # a bulkhead (`engine.state.contain`)
        st.contain(state, event, exc)
    if not state.dirty and at < state.lease_due and not state.exhaustive:
        return state, ()
    actions = plan(state, at)
    record(state, actions)
    return state, actions


_HANDLERS = st.HANDLERS


# -- one cluster -----------------------------------------------------------------------------


def _plan_cluster(state: st.State, cs: st.ClusterState, now: float, out: list[act.Action], *,
                  exhaustive: bool = False) -> None:
    cs.settled = False
    start = len(out)
    if cs.announce != math.inf:
        out.append(act.Requeue(cluster=cs.key, at=cs.announce))
    for kind, reason, message in cs.notices:  # recording the Events drops them
        lc.tell(cs, kind, reason, "WARNING" if kind == "Warning" else "INFO", message, out)
    if now < cs.retry_at:  # a call failed: wait out the retry delay (a timer is set)
        return
    conflict = ""
    if state.install is not None:
        if cs.obj is None:  # only pods seen (the cluster is gone): nothing to claim
            return
        acting, conflict = claiming.claim_verdict(state, state.install, cs, now, out)
        if not acting:
            return
    spec = cs.spec
    if spec is None:
        if cs.problems:
            status.plan_status(cs, now, out, conflict=conflict)
        return
    if cs.service != spec.service_key and not cs.service_inflight \
            and now >= cs.service_retry_at:
        out.append(act.ApplyService(cluster=cs.key, name=spec.service_name,
                                    manifest=manifests.service(spec)))
    if not (cs.head_current and not cs.restart_head):  # else the head needs nothing
        _head(cs, now, out)
    if cs.dead:
        for name in cs.dead:
            pod = cs.pods[name]
            out.append(act.DeletePod(cluster=cs.key, name=name, pod_type=pod.pod_type,
                                     reason="failed", uid=pod.uid))
    if cs.drained:
        drains.plan_deletes(cs, out)
    full = False
    note = None
    if _can_scale(cs):
        if cs.needs_update:
            note = _autoscale(cs, now, out, exhaustive=exhaustive)
            if now >= cs.stuck_due:  # a worker may be stuck (`engine.stuck`)
                stuck.plan(cs, now, out, skip=_removed(out, start))
            full = True
        else:
            _min_workers(cs, now, out)
    if status.plan_status(cs, now, out, conflict=conflict, start=start, note=note) and full \
            and len(out) == start:
        cs.settled = cs.head_current and not conflict


def _removed(out: list[act.Action], start: int) -> set[str]:
    """The pods this plan already removes (deletes or drains) since `start`."""
    return {a.name for a in out[start:]
            if type(a) is act.DeletePod or type(a) is act.DrainNode}


def service_signature(cs: st.ClusterState) -> str:
    """What the head Service is made from: a new generation that keeps it needs no call."""
    assert cs.spec is not None
    return cs.spec.service_key


def _can_scale(cs: st.ClusterState) -> bool:
    return cs.phase is Phase.RUNNING and cs.head_running and not cs.restart_head


def _full_pass_due(cs: st.ClusterState) -> bool:
    return cs.needs_update and _can_scale(cs)


def _head(cs: st.ClusterState, now: float, out: list[act.Action]) -> None:
    spec = cs.spec
    assert spec is not None
    if cs.phase is Phase.NONE or cs.phase is Phase.ERROR:
        return
    if cs.head:
        pod = cs.pods[cs.head]
        if not cs.head_current:
            _delete_head(cs, pod, "outdated", "the head pod config changed: restarting Ray", out)
        elif cs.restart_head and now >= cs.backoff_until:
            _delete_head(cs, pod, "recovery", "autoscaling failed: restarting Ray", out)
        return
    if cs.head_creating or (cs.phase is Phase.RECOVERY and now < cs.backoff_until):
        return
    name = manifests.pod_name(spec, spec.head, cs.counter)
    out.append(act.CreatePod(
        cluster=cs.key, name=name, pod_type=spec.head_pod_type, role=ev.HEAD,
        template=_template(cs, spec.head, ev.HEAD, spec.head.resources),
    ))
    message = f"Adding 1 node of type {spec.head_pod_type} (head)."
    lc.tell(cs, "Normal", "CreatedHeadPod", "INFO", message, out)


def _delete_head(cs: st.ClusterState, pod: ev.PodSeen, reason: str, message: str,
                 out: list[act.Action]) -> None:
    out.append(act.DeletePod(cluster=cs.key, name=pod.name, pod_type=pod.pod_type,
                             reason=reason, uid=pod.uid))
    lc.tell(cs, "Normal", "RestartingRay", "INFO", message, out)


def _min_workers(cs: st.ClusterState, now: float, out: list[act.Action]) -> None:
    spec = cs.spec
    assert spec is not None
    live, inflight = cs.live, cs.inflight
    launch: dict[str, int] = {}
    out_of = stuck.unavailable(cs, now) if cs.unavailable else ()
    for name, t in spec.pod_types.items():
        if name in out_of:
            continue
        missing = min(t.min_workers, t.max_workers) - live.get(name, 0) - inflight.get(name, 0)
        if missing > 0:
            launch[name] = missing
    if launch:
        _launch(cs, launch, out)


def _autoscale(cs: st.ClusterState, now: float, out: list[act.Action], *,
               exhaustive: bool) -> demand.Note:
    """A full pass; returns what it found of demand no launch covers."""
    terminate = exhaustive or autoscaler.may_terminate(cs, now, idle=cs.load_fresh)
    if not terminate and not autoscaler.may_launch_beyond_min(cs):
        _min_workers(cs, now, out)
        return demand.quick(cs, now)
    full = demand.full(cs)  # before this pass's launches, as the shortcut sees it
    decision = autoscaler.update(cs, now, idle=cs.load_fresh, enforce=terminate)
    if decision.terminate:
        by_group: dict[tuple[str, str], list[float]] = defaultdict(list)
        used = autoscaler.last_use(cs, now) if cs.load is not None else {}
        for name, reason in decision.terminate:
            pod = cs.pods[name]
            idle = now - used[pod.ip] if reason == autoscaler.IDLE and pod.ip in used else -1.0
            message = (drains.idle_message(round(idle)) if idle >= 0
                       else f"the operator removes this worker ({reason})")
            drains.remove(cs, pod, reason, message, now, out)
            by_group[(pod.pod_type, reason)].append(idle)
        for (pod_type, reason), idles in by_group.items():
            message = f"Removing {len(idles)} nodes of type {pod_type} ({reason})."
            if reason == autoscaler.IDLE and min(idles) >= 0:
                message += (f" Idle for {_span(idles)} s, past idleTimeoutMinutes "
                            f"{cs.idle_timeout / 60:g}.")
            lc.tell(cs, "Normal", "DeletedWorkerPods", "INFO", message, out)
    if decision.launch:
        _launch(cs, decision.launch, out, decision.types, why=_launch_reasons(cs, decision))
    if full:
        return demand.quick(cs, now)
    return demand.note(cs, {n: t.resources for n, t in decision.types.items()},
                       decision.unfulfilled, sum(decision.launch.values()), now)


def _span(values: list[float]) -> str:
    low, high = round(min(values)), round(max(values))
    return f"{low}" if low == high else f"{low}-{high}"


def _launch_reasons(cs: st.ClusterState, decision: autoscaler.Decision) -> dict[str, str]:
    """Why each type is launched, in a sentence: its minimum, a rolling update, or demand."""
    spec, load = cs.spec, cs.load
    assert spec is not None
    asked = [] if load is None else [*((b.resources, b.count) for b in load.pending),
                                     *((b.resources, b.count) for b in load.requests),
                                     *((b, 1) for g in load.placement_groups for b in g.bundles)]
    out = {}
    for name in decision.launch:
        t = spec.pod_types[name]
        have = cs.live.get(name, 0) + cs.inflight.get(name, 0)
        if have < min(t.min_workers, t.max_workers):
            out[name] = f"To keep minWorkers {min(t.min_workers, t.max_workers)}."
        elif cs.outdated and not asked:
            out[name] = "To replace outdated workers."
        elif asked:
            out[name] = f"For pending demand: {demand.shapes(asked)}."
    return out


def _template(cs: st.ClusterState, pod_type: PodType, role: str,
              resources: Mapping[str, float]) -> manifests.PodTemplate:
    """The pod template, memoized per cluster generation (a pure function of its inputs)."""
    key = (pod_type.name, role, tuple(sorted(resources.items())))
    found = cs.templates.get(key)
    if found is None:
        assert cs.spec is not None
        found = cs.templates[key] = manifests.template(cs.spec, pod_type, role=role,
                                                       resources=resources)
    return found


def _launch(cs: st.ClusterState, launch: Mapping[str, int], out: list[act.Action],
            types: Mapping[str, NodeType] | None = None,
            why: Mapping[str, str] | None = None) -> None:
    spec = cs.spec
    assert spec is not None
    counter = cs.counter
    for type_name, n in launch.items():
        t = spec.pod_types[type_name]
        resources = types[type_name].resources if types else t.resources
        template = _template(cs, t, ev.WORKER, resources)
        key, worker, create = cs.key, ev.WORKER, act.CreatePod
        prefix = manifests.pod_prefix(spec, t)
        out.extend(
            create(cluster=key, name=f"{prefix}{i}", pod_type=type_name, role=worker,
                   template=template)
            for i in range(counter, counter + n)
        )
        counter += n
        message = f"Adding {n} nodes of type {type_name}."
        reason = why.get(type_name) if why is not None else (
            f"To keep minWorkers {min(t.min_workers, t.max_workers)}.")
        if reason:
            message += f" {reason}"
        lc.tell(cs, "Normal", "CreatedWorkerPods", "INFO", message, out)


# -- status ----------------------------------------------------------------------------------


