"""One cluster's phase machine and timers, shared by every fold and by the planner.

`move` applies a trigger to the phase through the transition table (`engine.transitions`),
counting restarts and backoff; `wake` asks the next plan to announce a timer; `fail` and
`quarantine` put one cluster in phase Error (the bulkheads); `notice`, `news` and `tell` are
how a cluster's news reaches its Events and the log.
"""

from __future__ import annotations

import heapq
import math

from engine import actions as act
from engine import errors, transitions
from engine import events as ev
from engine.phases import Phase
from engine.records import (
    BACKOFF_CAP,
    BACKOFF_RESET_AFTER,
    BACKOFF_START,
    RETRY_AFTER_FAILURE,
    RETRY_CAP,
    ClusterState,
    OwnLease,
    State,
)
from engine.transitions import Trigger


def cluster(state: State, key: ev.ClusterKey) -> ClusterState:
    cs = state.clusters.get(key)
    if cs is None:
        state.cluster_seq += 1
        cs = state.clusters[key] = ClusterState(key=key, seq=state.cluster_seq)
        ns = key[0]
        before = state.namespaces.get(ns, 0)
        state.namespaces[ns] = before + 1
        if state.install is not None:
            own = state.own_leases.get(ns)
            if own is None:
                state.own_leases[ns] = OwnLease()
                state.lease_due = -math.inf
            elif not before and not own.inflight:
                # Renewals stop while a namespace has no cluster (`next_lease_due`); a new
                # cluster there resumes them, or the lease would lapse and fence it forever.
                state.lease_due = min(state.lease_due, own.due)
    return cs


def wake(state: State, key: ev.ClusterKey, at: float) -> None:
    """Plan `key` again at `at`: for the end of a restart backoff, a retry or expiring
    expectations. The next plan announces it as a `Requeue` action, so the driver knows when
    to send a `Tick`; recording that action sets the timer (`push_timer`). Full autoscaler
    passes follow load reports, as Ray's follow its 5 s load cycle."""
    cs = state.clusters.get(key)
    if cs is not None and at < cs.announce:
        cs.announce = at
        mark(state, key)


def push_timer(state: State, key: ev.ClusterKey, at: float) -> None:
    """Set a timer that a `Tick` at or after `at` fires."""
    state.timer_seq += 1
    heapq.heappush(state.timers, (at, state.timer_seq, key))


def mark(state: State, key: ev.ClusterKey) -> None:
    state.dirty[key] = None


def move(state: State, cs: ClusterState, trigger: Trigger, at: float) -> None:
    before = cs.phase
    after = transitions.next_phase(before, trigger)
    if (before, trigger) in transitions.FAILURES:
        cs.retries += 1
        if cs.running_since >= 0 and at - cs.running_since >= BACKOFF_RESET_AFTER:
            cs.failures = 0
        cs.failures += 1
        delay = min(BACKOFF_START * 2 ** (cs.failures - 1), BACKOFF_CAP)
        cs.backoff_until = at + delay
        cs.running_since = -1.0
        wake(state, cs.key, cs.backoff_until)
    if after is Phase.RUNNING and before is not Phase.RUNNING:
        cs.running_since = at
    cs.phase = after
    settle(state, cs, at)


def settle(state: State, cs: ClusterState, at: float) -> None:
    """State-triggered moves (h11 style): a current, Running head ends launch and recovery."""
    if cs.phase in (Phase.UPDATING, Phase.RECOVERY) and _head_current_and_running(cs):
        if cs.phase is Phase.RECOVERY and at < cs.backoff_until:
            return
        move(state, cs, Trigger.HEAD_RUNNING, at)


def _head_current_and_running(cs: ClusterState) -> bool:
    return cs.head_current and cs.head_running and not cs.restart_head


def check_head(cs: ClusterState) -> None:
    """Derive `head_current` after the head pod or the spec changed."""
    spec = cs.spec
    if not cs.head or spec is None:
        cs.head_current = False
        return
    pod = cs.pods[cs.head]
    head = spec.pod_types.get(pod.pod_type)
    cs.head_current = (head is not None and pod.pod_type == spec.head_pod_type
                       and pod.launch_hash == head.launch_hash)


def fail(state: State, cs: ClusterState, at: float, reason: str, message: str) -> None:
    """Phase Error with `message`: nothing is written for `cs` but its status (and a Warning
    Event) until a new generation of it is read. The first failure's message is kept."""
    cs.settled = False
    if cs.phase is not Phase.ERROR or not cs.problems:
        cs.problems = message
        cs.error_reason = reason
        cs.spec_valid_since = at
    cs.spec = None
    cs.head_current = False
    cs.templates = {}
    cs.types_memo = None
    if cs.phase is not Phase.ERROR:
        move(state, cs, Trigger.SPEC_REJECTED, at)
    mark(state, cs.key)


def quarantine(state: State, cs: ClusterState, at: float, where: str,
               exc: Exception) -> None:
    """Put `cs` in phase Error for an unexpected exception while `where` (a bulkhead)."""
    cs.broken = True
    fail(state, cs, at, "InternalError",
         f"the operator failed while {where} for this RayCluster: {errors.describe(exc)}")


def retry_later(state: State, cs: ClusterState, at: float) -> None:
    """A call for `cs` failed: write nothing more for it until a delay has passed, 1 s
    doubling to 60 s while calls keep failing (a persistent error, such as a missing RBAC
    permission or a cluster deleted while the watch was down, must not make the operator
    retry in a tight loop), then plan it again."""
    cs.failed_calls += 1
    delay = min(RETRY_AFTER_FAILURE * 2 ** (cs.failed_calls - 1), RETRY_CAP)
    cs.retry_at = max(cs.retry_at, at + delay)
    wake(state, cs.key, cs.retry_at)


def notice(state: State, cs: ClusterState, reason: str, message: str, *,
           key: str = "") -> None:
    """Have the next plan tell `message` as a Warning Event and a log line, unless a notice
    of the same `key` (default: the message) was told and not cleared since: a persistent
    error is told once, not at every retry."""
    key = key or message
    if key not in cs.told:
        cs.notices.append(("Warning", reason, message))
        cs.told[key] = None
        mark(state, cs.key)


def news(state: State, cs: ClusterState, kind: str, reason: str, message: str) -> None:
    """Have the next plan tell `message` as an Event of type `kind` and a log line (each
    time: news, not a persistent condition)."""
    cs.notices.append((kind, reason, message))
    mark(state, cs.key)


def tell(cs: ClusterState, kind: str, reason: str, level: str, message: str,
         out: list[act.Action]) -> None:
    """The same news as a Kubernetes Event on the cluster and as a prefixed log line."""
    out.append(act.EmitEvent(cluster=cs.key, type=kind, reason=reason, message=message,
                             uid=cs.uid))
    out.append(act.Log(cluster=cs.key, level=level, message=message))
