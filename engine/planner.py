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

import functools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from engine import actions as act
from engine import autoscaler, claims, errors, manifests
from engine import events as ev
from engine import state as st
from engine.phases import Phase
from engine.scheduler import NodeType
from engine.spec import PodType

STATUS_PERIOD = st.STATUS_PERIOD
NO_CLUSTER: ev.ClusterKey = ("", "")
"""The key of actions about the install rather than a cluster (lease timers, its logs)."""

Signature = st.Signature
signature_of = st.signature_of


def plan(state: st.State, now: float) -> tuple[act.Action, ...]:
    """The actions to take now for every cluster that changed or is due."""
    if not state.synced:
        return ()
    out: list[act.Action] = []
    clusters = state.clusters
    if state.faults:
        _plan_faults(state, out)
    if state.install is not None and now >= state.lease_due:
        _plan_leases(state, now, out)
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
        st.quarantine(state, cs, now, "planning", exc)
        try:
            _plan_cluster(state, cs, now, out)
        except Exception as again:  # even its status cannot be planned: log it, and wait
            del out[start:]
            state.faults.append(f"{act.prefix(cs.key)} planning its status failed too: "
                                f"{errors.describe(again)}")


def _plan_faults(state: st.State, out: list[act.Action]) -> None:
    """Log the faults contained outside any cluster since the last plan."""
    for fault in state.faults:
        out.append(act.Log(cluster=NO_CLUSTER, level="ERROR", message=f"contained: {fault}"))
    state.faults.clear()


def record(state: st.State, actions: tuple[act.Action, ...]) -> st.State:
    """Fold the decision just planned into the state as in-flight expectations."""
    now = state.now
    clusters = state.clusters
    if state.synced:
        for key in clusters if state.exhaustive else state.dirty:
            cs = clusters.get(key)
            if (cs is not None and _full_pass_due(cs) and now >= cs.retry_at
                    and may_act(state, cs, now)):
                cs.needs_update = False
                cs.load_fresh = False
    moved: dict[ev.ClusterKey, None] = {}
    cs = None
    last: ev.ClusterKey | None = None
    create, delete, lease = act.CreatePod, act.DeletePod, act.RenewLease
    add_creating, add_deleting = st.add_creating, st.add_deleting
    for action in actions:
        kind = type(action)  # every action class is final: `is` tells them apart
        if kind is lease:
            _record_lease(state, action, now)  # type: ignore[arg-type]
            continue
        if action.cluster is not last:  # actions come grouped by cluster: one lookup each
            last = action.cluster
            cs = clusters.get(last)
        if cs is None:
            continue
        try:
            if kind is create:
                add_creating(cs, action.name, action.pod_type, action.role, now)  # type: ignore[union-attr]
                moved[cs.key] = None
            elif kind is delete:
                add_deleting(cs, action.name, now)  # type: ignore[union-attr]
                moved[cs.key] = None
            else:
                _RECORDERS[kind](state, cs, action, now, moved)
        except Exception as exc:  # a bulkhead, as in `plan`
            st.quarantine(state, cs, now, f"recording {kind.__name__}", exc)
    if state.synced:
        state.dirty.clear()
        state.dirty.update(moved)  # counts moved: the status may follow
        if state.install is not None and now >= state.lease_due:
            state.lease_due = st.next_lease_due(state)
    return state


def _record_service(state: st.State, cs: st.ClusterState, action: Any, now: float,
                    moved: dict[ev.ClusterKey, None]) -> None:
    cs.service_inflight = service_signature(cs)


def _record_status(state: st.State, cs: st.ClusterState, action: Any, now: float,
                   moved: dict[ev.ClusterKey, None]) -> None:
    _status_sent(cs, action.status, now, action.signature)


def _record_requeue(state: st.State, cs: st.ClusterState, action: Any, now: float,
                    moved: dict[ev.ClusterKey, None]) -> None:
    st.push_timer(state, cs.key, action.at)
    cs.wake_pending = min(cs.wake_pending, action.at)
    if cs.announce <= action.at:
        cs.announce = math.inf


def _record_claim(state: st.State, cs: st.ClusterState, action: Any, now: float,
                  moved: dict[ev.ClusterKey, None]) -> None:
    cs.claim_inflight = True
    fence = action.fence
    mine = state.install is not None and fence.rpartition("/")[0] == state.install.name
    cs.claim_writing = (fence, action.resource_version) if mine else None
    if action.reason == "contend" and cs.claim is not None:
        cs.contended = cs.claim.install
        cs.contended_at = now
    elif action.reason == "ask":
        cs.asked_at = now


def _record_lease(state: st.State, action: act.RenewLease, now: float) -> None:
    own = state.own_leases[action.namespace]
    own.inflight = True
    own.issued_at = now


def _record_nothing(state: st.State, cs: st.ClusterState, action: Any, now: float,
                    moved: dict[ev.ClusterKey, None]) -> None:
    return


def _record_event(state: st.State, cs: st.ClusterState, action: Any, now: float,
                  moved: dict[ev.ClusterKey, None]) -> None:
    if cs.notices:  # a notice told is done with
        told = (action.reason, action.message)
        cs.notices = [n for n in cs.notices if n != told]


_RECORDERS: dict[type, Any] = {
    act.ApplyService: _record_service,
    act.PatchStatus: _record_status,
    act.Requeue: _record_requeue,
    act.EmitEvent: _record_event,
    act.Log: _record_nothing,
    act.WriteClaim: _record_claim,
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
    for reason, message in cs.notices:  # recording the Events drops them
        _tell(cs, "Warning", reason, "WARNING", message, out)
    if now < cs.retry_at:  # a call failed: wait out the retry delay (a timer is set)
        return
    conflict = ""
    if state.install is not None:
        if cs.obj is None:  # only pods seen (the cluster is gone): nothing to claim
            return
        acting, conflict = _claim(state, state.install, cs, now, out)
        if not acting:
            return
    spec = cs.spec
    if spec is None:
        if cs.problems:
            _status(cs, now, out, conflict=conflict)
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
    full = False
    if _can_scale(cs):
        if cs.needs_update:
            _autoscale(cs, now, out, exhaustive=exhaustive)
            full = True
        else:
            _min_workers(cs, now, out)
    if _status(cs, now, out, conflict=conflict) and full and len(out) == start:
        cs.settled = cs.head_current and not conflict


def may_act(state: st.State, cs: st.ClusterState, now: float) -> bool:
    """Whether this install may write to `cs` now: its claim names us, no live narrower
    install asked for it, and our lease there is fresh (the fence the driver checks again
    right before each write)."""
    me = state.install
    if me is None:
        return True
    if not st.lease_fresh(state, cs.key[0], now) or cs.claim is None:
        return False
    return claims.verdict(me, cs.claim, alive=_alive(state, cs, now),
                          confirmed=cs.claim_confirmed == cs.claim.fence) is claims.Verdict.ACT


def _alive(state: st.State, cs: st.ClusterState, now: float) -> dict[str, bool]:
    claim = cs.claim
    if claim is None:
        return {}
    names = {claim.install, *claim.contenders}
    if claim.handoff is not None:
        names.add(claim.handoff[0])
    return {name: now < st.alive_until(state, cs, name) for name in names}


def _claim(state: st.State, me: claims.Install, cs: st.ClusterState, now: float,
           out: list[act.Action]) -> tuple[bool, str]:
    """Act on the claim of `cs`: return whether this install acts on it now, and the
    conflict to show in its status ("" for none)."""
    if not st.lease_fresh(state, cs.key[0], now):
        return False, ""
    claim = cs.claim
    alive = _alive(state, cs, now)
    verdict = claims.verdict(me, claim, alive=alive,
                             confirmed=claim is not None and cs.claim_confirmed == claim.fence)
    if cs.claim_inflight:  # a claim write pending: wait for its result
        return verdict is claims.Verdict.ACT, ""
    if verdict is claims.Verdict.ACT:
        assert claim is not None
        dead = {name for name, ok in alive.items() if not ok}
        if dead & {*claim.contenders, *(claim.handoff[:1] if claim.handoff else ())}:
            _write_claim(cs, claims.without(claim, dead), "prune", out)
        live = sorted(n for n in claim.contenders if alive.get(n))
        if not live:
            return True, ""
        expiry = min(st.alive_until(state, cs, n) for n in live)
        out.append(act.Requeue(cluster=cs.key, at=expiry))
        return True, (f"installs {', '.join(live)} also cover this cluster; {me.name} "
                      f"manages it (narrowest scope first, then the older claim)")
    if verdict is claims.Verdict.CLAIM:
        if _confirmed_unseen(cs):
            return False, ""  # our claim was written: wait for the watch to show it
        new = claims.claimed_by(me, claim)
        _write_claim(cs, new, "claim", out)
        out.append(act.Log(cluster=cs.key, level="INFO",
                           message=f"claiming the cluster for {me.name} (epoch {new.epoch})"))
        return False, ""
    assert claim is not None
    holder_expiry = st.alive_until(state, cs, claim.install)
    if verdict is claims.Verdict.HAND_OFF:
        new = claims.handed_to(claim)
        _write_claim(cs, new, "hand-off", out)
        message = (f"handing the cluster over to {new.install}, whose scope is narrower "
                   f"(epoch {new.epoch})")
        _tell(cs, "Normal", "OwnershipHandedOver", "INFO", message, out)
        return False, ""
    out.append(act.Requeue(cluster=cs.key, at=holder_expiry))
    # Asking and contending are repeated at most once per lease period: if the holder drops
    # the entry (it saw this install's lease expire), writing it back at once could go on
    # for as long as the two disagree about that lease.
    if verdict is claims.Verdict.ASK and now >= cs.asked_at + me.lease_seconds:
        _write_claim(cs, claims.asked_by(me, claim), "ask", out)
        out.append(act.Log(cluster=cs.key, level="INFO",
                           message=f"asking {claim.install} to hand the cluster over: "
                                   f"{me.name} has the narrower scope"))
    elif verdict is claims.Verdict.LOSE and me.name not in claim.contenders and (
            now >= cs.contended_at + me.lease_seconds):
        _write_claim(cs, claims.contended_by(me, claim), "contend", out)
        if cs.contended != claim.install:
            message = (f"{claim.install} manages this cluster and its scope is as narrow or "
                       f"narrower, or its claim is older: {me.name} will not act on it")
            _tell(cs, "Warning", "OwnershipConflict", "WARNING", message, out)
    return False, ""


def _confirmed_unseen(cs: st.ClusterState) -> bool:
    """Whether the watch still shows the version of the cluster that this process's last
    confirmed claim write replaced (writing again now could only meet 409)."""
    return bool(cs.claim_replaced) and cs.claim_rv == cs.claim_replaced


def _tell(cs: st.ClusterState, kind: str, reason: str, level: str, message: str,
          out: list[act.Action]) -> None:
    """The same news as a Kubernetes Event on the cluster and as a prefixed log line."""
    out.append(act.EmitEvent(cluster=cs.key, type=kind, reason=reason, message=message,
                             uid=cs.uid))
    out.append(act.Log(cluster=cs.key, level=level, message=message))


def _write_claim(cs: st.ClusterState, claim: claims.Claim, reason: str,
                 out: list[act.Action]) -> None:
    if cs.claim_refused and cs.claim_refused == cs.claim_rv:
        return  # the API refused a claim on this version of the object: wait for another
    out.append(act.WriteClaim(cluster=cs.key, claim=claim.encode(), resource_version=cs.claim_rv,
                              reason=reason))


def _plan_leases(state: st.State, now: float, out: list[act.Action]) -> None:
    """Renew this install's lease in every namespace where it sees clusters, when due."""
    me = state.install
    assert me is not None
    due = math.inf
    for ns, own in sorted(state.own_leases.items()):
        if own.inflight or not state.namespaces.get(ns):
            continue
        rival = state.rivals.get(ns) if state.rivals else None
        if rival is not None:
            if now < rival.until:
                if not rival.told:
                    rival.told = True
                    out.append(act.Log(cluster=NO_CLUSTER, level="WARNING", message=(
                        f"another process of install {me.name} (instance {rival.instance}, "
                        f"newer than this one, {me.instance}) renews its lease in namespace "
                        f"{ns}: this process stands down there until that lease lapses")))
                due = min(due, rival.until)
                continue
            del state.rivals[ns]
            out.append(act.Log(cluster=NO_CLUSTER, level="INFO", message=(
                f"resuming in namespace {ns}: the lease of instance {rival.instance} of "
                f"{me.name} lapsed")))
        if now >= own.due:
            out.append(act.RenewLease(namespace=ns, install=me.name, seconds=me.lease_seconds,
                                      rank=me.rank, instance=me.instance))
            due = min(due, now + me.renew_seconds)
        else:
            due = min(due, own.due)
    if due < math.inf:
        out.append(act.Requeue(cluster=NO_CLUSTER, at=due))


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
    _tell(cs, "Normal", "CreatedHeadPod", "INFO", message, out)


def _delete_head(cs: st.ClusterState, pod: ev.PodSeen, reason: str, message: str,
                 out: list[act.Action]) -> None:
    out.append(act.DeletePod(cluster=cs.key, name=pod.name, pod_type=pod.pod_type,
                             reason=reason, uid=pod.uid))
    _tell(cs, "Normal", "RestartingRay", "INFO", message, out)


def _min_workers(cs: st.ClusterState, now: float, out: list[act.Action]) -> None:
    spec = cs.spec
    assert spec is not None
    live, inflight = cs.live, cs.inflight
    launch: dict[str, int] = {}
    for name, t in spec.pod_types.items():
        missing = min(t.min_workers, t.max_workers) - live.get(name, 0) - inflight.get(name, 0)
        if missing > 0:
            launch[name] = missing
    if launch:
        _launch(cs, launch, out)


def _autoscale(cs: st.ClusterState, now: float, out: list[act.Action], *,
               exhaustive: bool) -> None:
    terminate = exhaustive or autoscaler.may_terminate(cs, now, idle=cs.load_fresh)
    if not terminate and not autoscaler.may_launch_beyond_min(cs):
        _min_workers(cs, now, out)
        return
    decision = autoscaler.update(cs, now, idle=cs.load_fresh, enforce=terminate)
    if decision.terminate:
        by_group: dict[tuple[str, str], int] = defaultdict(int)
        for name, reason in decision.terminate:
            pod = cs.pods[name]
            pod_type = pod.pod_type
            out.append(act.DeletePod(cluster=cs.key, name=name, pod_type=pod_type,
                                     reason=reason, uid=pod.uid))
            by_group[(pod_type, reason)] += 1
        for (pod_type, reason), n in by_group.items():
            message = f"Removing {n} nodes of type {pod_type} ({reason})."
            _tell(cs, "Normal", "DeletedWorkerPods", "INFO", message, out)
    if decision.launch:
        _launch(cs, decision.launch, out, decision.types)


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
            types: Mapping[str, NodeType] | None = None) -> None:
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
        _tell(cs, "Normal", "CreatedWorkerPods", "INFO", message, out)


# -- status ----------------------------------------------------------------------------------


def signature(cs: st.ClusterState, conflict: str = "") -> Signature:
    manager = cs.claim.install if cs.claim is not None else ""
    return Signature(cs.phase, cs.retries, cs.generation, cs.problems,
                     bool(cs.head and cs.head_running), manager, conflict, cs.service_conflict)


def _status(cs: st.ClusterState, now: float, out: list[act.Action], *,
            conflict: str = "") -> bool:
    """Write the status when it changed (worker counts at most every `STATUS_PERIOD`);
    return whether the one written is current, so nothing is to write, now or later."""
    sig = signature(cs, conflict)
    sent = cs.status_sent
    if sent is not None and sent.signature == sig:
        if _same_counts(sent.counts, cs.live):
            return True
        due = cs.status_sent_at + STATUS_PERIOD
        if now < due:
            if cs.wake_pending > due:
                out.append(act.Requeue(cluster=cs.key, at=due))
            return False
    counts = {t: n for t, n in sorted(cs.live.items()) if n}
    fence = cs.claim.fence if cs.claim is not None else ""
    out.append(act.PatchStatus(cluster=cs.key, status=_status_dict(cs, now, sig, counts),
                               uid=cs.uid, fence=fence, signature=sig))
    last = sent.signature if sent is not None else None
    if last is None or last[:2] != sig[:2] or last.problems != sig.problems:
        _announce(cs, out)
    if conflict and (last is None or last.conflict != conflict):
        out.append(act.Log(cluster=cs.key, level="WARNING", message=conflict))
    if sig.service_conflict and (last is None or last.service_conflict != sig.service_conflict):
        _tell(cs, "Warning", "ServiceConflict", "WARNING", sig.service_conflict, out)
    return False


def _same_counts(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    if a == b:
        return True
    return {k: v for k, v in a.items() if v} == {k: v for k, v in b.items() if v}


def _announce(cs: st.ClusterState, out: list[act.Action]) -> None:
    if cs.phase is Phase.ERROR:
        reason = cs.error_reason or "InvalidSpec"
        message = f"invalid RayCluster: {cs.problems}" if reason == "InvalidSpec" \
            else cs.problems
        _tell(cs, "Warning", reason, "ERROR", message, out)
    elif cs.phase is Phase.RECOVERY:
        message = (f"the head pod or Ray failed; restarting the cluster "
                   f"(restart {cs.retries}, not before t={cs.backoff_until:g})")
        _tell(cs, "Warning", "HeadPodLost", "WARNING", message, out)
    elif cs.phase is not Phase.NONE:
        out.append(act.Log(cluster=cs.key, level="INFO",
                           message=f"phase {cs.phase.value}, restarts {cs.retries}"))


def desired_workers(cs: st.ClusterState, types: Iterable[str]) -> dict[str, int]:
    """Workers per type the engine wants now: the live ones plus the creates in flight."""
    return {t: cs.live.get(t, 0) + cs.inflight.get(t, 0) for t in types}


def _status_dict(cs: st.ClusterState, now: float, sig: Signature,
                 counts: dict[str, int]) -> dict[str, Any]:
    sent = cs.status_sent
    head_ready = sig.head_ready
    same = sent is not None and sent.signature.head_ready == head_ready
    head_since = cs.head_ready_since if same else now
    # Every type is listed, zeros included: a status is written as a merge patch, where a
    # type left out would keep its old count.
    types = sorted({*(cs.spec.pod_types if cs.spec else ()), *cs.live, *cs.inflight})
    workers = {t: cs.live.get(t, 0) for t in types}
    desired = desired_workers(cs, types)
    status: dict[str, Any] = {
        "phase": cs.phase.value,
        "autoscalerRetries": cs.retries,
        "observedGeneration": cs.generation,
        "workers": workers,
        "desiredWorkers": desired,
        "conditions": [
            _condition("HeadPodReady", head_ready,
                       "HeadPodRunning" if head_ready else "HeadPodNotRunning", head_since,
                       cs.generation),
            _condition("SpecValid", not cs.problems,
                       (cs.error_reason or "InvalidSpec") if cs.problems else "Validated",
                       cs.spec_valid_since,
                       cs.generation, cs.problems),
        ],
    }
    if sig.manager:
        status["managedBy"] = sig.manager
        status["conditions"].append(_condition(
            "OwnershipConflict", bool(sig.conflict),
            "OtherInstallsCover" if sig.conflict else "NoConflict", cs.claim_since,
            cs.generation, sig.conflict))
    if sig.service_conflict:
        status["conditions"].append(_condition(
            "ServiceConflict", True, "NotOwnedByThisCluster", cs.service_conflict_since,
            cs.generation, sig.service_conflict))
    if cs.problems:
        status["message"] = cs.problems
    return status


def _condition(kind: str, ok: bool, reason: str, since: float, generation: int,
               message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(since),
        "observedGeneration": generation,
    }


@functools.lru_cache(maxsize=4096)
def timestamp(seconds: float) -> str:
    """RFC 3339 UTC time of `seconds` since the epoch (pure; no clock is read). Memoized:
    a cluster's conditions repeat the same few transition times in every status."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_sent(cs: st.ClusterState, status: Mapping[str, Any], now: float,
                 sig: Signature | None = None) -> None:
    old = cs.status_sent
    if sig is None:
        sig = signature_of(status)
    if old is None or old.signature.head_ready != sig.head_ready:
        cs.head_ready_since = now
    cs.status_sent = st.Sent(sig, dict(cs.live))
    cs.status_sent_at = now
