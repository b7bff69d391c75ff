"""Pods that never start: a worker not running, or not joined to Ray, long after its creation.

An unschedulable pod, an image that cannot be pulled or a Ray that never starts would
otherwise stay for ever, holding a slot of its type's maxWorkers. Ray's autoscaler gives up
on such an instance after a timeout and launches again; so does the operator:
- a worker pod created more than `workerStartTimeoutMinutes` ago (Ray's 10 by default) that
  is not Running, or Running but not joined to Ray while Ray is read, is deleted (reason
  "stuck"), with a Warning Event carrying what its status says (`PodSeen.waiting`:
  Unschedulable, ErrImagePull, ...);
- each stuck pod makes its type unavailable for a while, 10 s doubling with each failure in
  a row up to 10 minutes (as Ray's autoscaler v2 marks a node type unavailable after launch
  failures): no pod of that type is launched then, and the scheduler may pick another type
  that fits the demand. A worker of the type seen running ends the streak.

The scan runs in full autoscaler passes, and only once one may be due: `cs.stuck_due` is
the earliest time an unstarted worker could become stuck (`record` moves it on after a pass,
a new create brings it forward); the timer firing then asks for a pass.
"""

from __future__ import annotations

import math

from engine import actions as act
from engine import events as ev
from engine import lifecycle as lc
from engine.records import ClusterState, State

STUCK = "stuck"
BACKOFF_START = 10.0
BACKOFF_CAP = 600.0
FAILED_KEPT = 10  # the last stuck pods `ray status` lists as failed nodes


def timeout(cs: ClusterState) -> float:
    """Seconds a worker has to start (inf: never judged)."""
    assert cs.spec is not None
    minutes = cs.spec.worker_start_timeout_minutes
    return 60.0 * minutes if minutes > 0 else math.inf


def started(cs: ClusterState, pod: ev.PodSeen) -> bool:
    """Running, and joined to Ray when Ray is read."""
    return pod.phase == ev.RUNNING and (cs.load is None or pod.ip in cs.joined)


def plan(cs: ClusterState, now: float, out: list[act.Action], *, skip: set[str]) -> None:
    """Delete the workers stuck now (but those in `skip`: already removed by this plan);
    ask to be woken when the next one could be."""
    limit = timeout(cs)
    if now < cs.stuck_due or limit == math.inf:
        return
    for pod in _unstarted(cs, skip):
        if pod.created + limit > now:
            continue
        what = pod.waiting or (f"phase {pod.phase}" if pod.phase != ev.RUNNING
                               else "Ray did not start on it")
        out.append(act.DeletePod(cluster=cs.key, name=pod.name, pod_type=pod.pod_type,
                                 reason=STUCK, uid=pod.uid))
        lc.tell(cs, "Warning", "WorkerPodStuck", "WARNING",
                f"worker {pod.name} of type {pod.pod_type} did not start in {limit:g} s "
                f"({what}): deleted; its type waits {backoff(cs, pod.pod_type):g} s before "
                "the next", out)
    due = next_due(cs, now)
    if due < cs.wake_pending and due != math.inf:
        out.append(act.Requeue(cluster=cs.key, at=due))


def _unstarted(cs: ClusterState, skip: set[str] | frozenset[str] = frozenset()
               ) -> list[ev.PodSeen]:
    return [pod for pod in cs.pods.values()
            if pod.role == ev.WORKER and pod.live and pod.created >= 0
            and pod.name not in cs.deleting and pod.name not in skip and not started(cs, pod)]


def next_due(cs: ClusterState, now: float) -> float:
    """The earliest time after `now` an unstarted worker seen now becomes stuck."""
    limit = timeout(cs)
    return min((d for pod in _unstarted(cs) if (d := pod.created + limit) > now),
               default=math.inf)


def after_pass(cs: ClusterState, now: float) -> None:
    """A full pass looked (`plan`): nothing is due before the next deadline."""
    if now >= cs.stuck_due and cs.spec is not None:
        cs.stuck_due = next_due(cs, now)


def backoff(cs: ClusterState, pod_type: str) -> float:
    """How long a type waits after its next stuck pod."""
    failures = cs.type_failures.get(pod_type, 0)
    return min(BACKOFF_START * 2.0 ** failures, BACKOFF_CAP)


def record(state: State, cs: ClusterState, action: act.DeletePod, now: float) -> None:
    """A stuck pod deleted: its type is unavailable for a while, longer at each failure."""
    until = now + backoff(cs, action.pod_type)
    cs.type_failures[action.pod_type] = cs.type_failures.get(action.pod_type, 0) + 1
    cs.unavailable[action.pod_type] = until
    cs.failed = [*cs.failed[-(FAILED_KEPT - 1):], (action.name, action.pod_type)]
    lc.wake(state, cs.key, until)


def created(state: State, cs: ClusterState, now: float) -> None:
    """A worker create was recorded: it must start by now + the timeout."""
    if cs.spec is None:
        return
    due = now + timeout(cs)
    if due < cs.stuck_due:
        cs.stuck_due = due
        lc.wake(state, cs.key, due)


def ran(cs: ClusterState, pod_type: str) -> None:
    """A worker of this type runs: its streak of failures ends."""
    if cs.type_failures:
        cs.type_failures.pop(pod_type, None)


def unavailable(cs: ClusterState, now: float) -> set[str]:
    """The types no pod is launched of now."""
    return {t for t, until in cs.unavailable.items() if now < until}
