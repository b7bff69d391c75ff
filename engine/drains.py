"""Drain before delete: a worker Ray may be using is asked of Ray before its pod goes.

Between the moment the autoscaler judges a worker idle (on a load report a few seconds old)
and the moment its pod is deleted, Ray may place a task on it; deleting the pod then kills
that task. Ray's own autoscaler closes this race by asking the GCS to drain the node first:
Ray refuses while work runs there, and once it accepts it places nothing new on the node.
The operator does the same, as values:

- `remove` turns a decision to remove a running worker into a `DrainNode` action (a pod
  that is not running has no Ray on it and is deleted at once);
- its answer is an `ActionResult`: `done` (accepted, or Ray has no such node) marks the pod
  drained, and once every drain of the cluster is answered one plan deletes the drained
  pods together (`plan_deletes`); `refused` keeps the pod, tells why
  (a Normal Event and a log line) and does not ask again for `REFUSED_HOLD` seconds (the
  node is busy: later load reports say when it is idle); a failed call keeps the pod and
  backs the cluster off like any failed call;
- while a drain is in flight the pod still counts as a live worker (it is one) but no
  autoscaler pass decides about it again, nor packs demand onto it (Ray would not either).

Three plain maps of the cluster's record hold it: `draining` (asked, pod -> why),
`drained` (accepted, pod -> why) and `held` (refused, pod -> when it may be asked again).
"""

from __future__ import annotations

from engine import actions as act
from engine import events as ev
from engine import lifecycle as lc
from engine.records import ClusterState, State

DRAIN_DEADLINE = 60.0
"""Seconds after a drain is asked by which the operator means the pod to be gone: Ray shows
it as the drain's deadline (the pod is deleted as soon as Ray accepts)."""

REFUSED_HOLD = 30.0
"""A worker Ray refused to drain (busy) is not asked again for this long."""


def needs_drain(cs: ClusterState, pod: ev.PodSeen) -> bool:
    """Whether Ray may be running work on this pod: a running worker with an address, in a
    cluster whose Ray the operator reads (without a load report there is no Ray to ask: an
    operator run without the Ray link, or a head not read yet, deletes as before)."""
    return cs.load is not None and pod.role == ev.WORKER and pod.phase == ev.RUNNING \
        and bool(pod.ip) and not pod.terminating


def remove(cs: ClusterState, pod: ev.PodSeen, reason: str, message: str, now: float,
           out: list[act.Action]) -> None:
    """Remove worker `pod` for `reason`: drain it first when Ray may be using it."""
    if cs.load is not None and pod.phase == ev.RUNNING and pod.ip and not pod.terminating \
            and pod.role == ev.WORKER:  # `needs_drain`, inlined: a pass may remove hundreds
        out.append(act.DrainNode(cluster=cs.key, name=pod.name, pod_type=pod.pod_type,
                                 ip=pod.ip, reason=reason, message=message,
                                 deadline=now + DRAIN_DEADLINE))
    else:
        out.append(act.DeletePod(cluster=cs.key, name=pod.name, pod_type=pod.pod_type,
                                 reason=reason, uid=pod.uid))


def idle_message(idle_seconds: float) -> str:
    """Ray's own reason message for an idle termination."""
    return f"Termination of node that's idle for {idle_seconds:g} seconds."


def plan_deletes(cs: ClusterState, out: list[act.Action]) -> None:
    """Delete the workers Ray accepted to drain (still there and live), all at once when no
    drain of the cluster waits for its answer any more: the drains of one pass are answered
    within moments of each other, and one plan deletes them together."""
    if cs.draining:
        return
    for name, reason in cs.drained.items():
        pod = cs.pods.get(name)
        if pod is not None and pod.live and name not in cs.deleting:
            out.append(act.DeletePod(cluster=cs.key, name=name, pod_type=pod.pod_type,
                                     reason=reason, uid=pod.uid))


def record_drain(state: State, cs: ClusterState, action: act.DrainNode, now: float,
                 moved: dict[ev.ClusterKey, None]) -> None:
    cs.draining[action.name] = action.reason


def forget(cs: ClusterState, name: str) -> None:
    """The pod is being deleted or is gone: no drain of it matters any more."""
    if cs.draining:
        cs.draining.pop(name, None)
    if cs.drained:
        cs.drained.pop(name, None)
    if cs.held:
        cs.held.pop(name, None)


def busy(cs: ClusterState, now: float) -> set[str]:
    """The workers no pass may remove now: being drained, or refused a moment ago."""
    out = set(cs.draining)
    out.update(cs.drained)
    for name, until in cs.held.items():
        if now < until:
            out.add(name)
    return out


def drain_result(state: State, cs: ClusterState, name: str, ok: bool,
                 event: ev.ActionResult) -> None:
    reason = cs.draining.pop(name, None)
    if reason is None:
        return
    if event.outcome == ev.DONE:
        cs.drained[name] = reason
        if not cs.draining:  # the last answer: the drained ones go (`plan_deletes`)
            lc.mark(state, cs.key)
    elif event.outcome == ev.REFUSED:
        until = event.at + REFUSED_HOLD
        cs.held[name] = until
        lc.news(state, cs, "Normal", "DrainRefused",
                f"Ray refused to drain worker {name} ({reason}): {event.reason or 'busy'}; "
                f"it is kept, and asked again after {REFUSED_HOLD:g} s if still to go")
        lc.wake(state, cs.key, until)  # (marks the cluster: drained ones may go)
    else:  # Ray could not be asked: keep the pod, back off, decide again
        lc.retry_later(state, cs, event.at)
        lc.mark(state, cs.key)
