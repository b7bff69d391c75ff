"""One operator install: the loop that feeds observed facts to the engine and its actions out.

Both worlds use this class; only the `Api` differs (the simulator's in-memory API, or the
live adapter's client). The loop is synchronous and single-threaded by design: the world
calls `observe` for each watch event in its scope, `tick` when a timer fires, and `run` to
drain the inbox. Every event the engine folds and every action it emits goes to `trace`,
which is what makes a run replayable (`python -m sim replay`).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from attrs import define, field

from driver import execute, translate
from driver.budget import Budget
from driver.metrics import Metrics
from engine import actions as act
from engine import claiming, claims, errors, planner, scopes, status
from engine import events as ev
from engine import state as st
from engine.labels import LABEL_CLUSTER

TraceHook = Callable[[str, "Operator", Any], None]


class RayLink(Protocol):
    """How the operator reaches the Ray heads of its clusters (the API reaches Kubernetes).

    `drain` asks a cluster's head to drain one node (`engine.actions.DrainNode`) and returns
    the answer as a result event, or None when the answer comes later (through the
    process's inbox: a live head is asked off the main loop)."""

    def drain(self, action: act.DrainNode, at: float) -> ev.ActionResult | None: ...

CALLS = {act.RenewLease: -1, act.WriteClaim: -1, act.CreatePod: 0, act.DeletePod: 0,
         act.ApplyService: 1, act.PatchStatus: 2, act.EmitEvent: 3}
"""Actions that are API calls and spend the budget, by priority: leases and claims first (a
lease that cannot be renewed fences the whole install), pods, then the Service, the status,
and Events last (logs and timers cost nothing)."""
WATCHED: dict[str, str | None] = {
    "rayclusters": None,
    "pods": LABEL_CLUSTER,
    "services": LABEL_CLUSTER,
    "leases": claims.LEASE_LABEL,
}
"""What an operator lists and watches, with the label selector of each: every RayCluster;
pods, Services and Leases by label (so it never caches pods it does not own). Both worlds
list by this table."""


def _no_trace(kind: str, operator: Operator, item: Any) -> None:
    return


@define
class Operator:
    """An operator install with its scope, its engine state and its inbox."""

    name: str
    api: execute.Api
    scope: scopes.Scope = scopes.EVERYWHERE
    state: st.State = field(factory=st.initial)
    inbox: deque[ev.Event] = field(factory=deque)
    log: Callable[[str], None] = print
    requeue: Callable[[float], None] = lambda at: None
    trace: TraceHook = _no_trace
    timestamp: Callable[[float], str] = status.timestamp
    malformed: int = 0
    budget: Budget[act.Action] | None = None  # API calls per second, shared fairly
    clock: Callable[[], float] = lambda: 0.0
    resume: Callable[[float], None] = lambda at: None  # call `run` again at this time
    metrics: Metrics = field(factory=Metrics)
    ray: RayLink | None = None  # None: no Ray link (drains are answered at once: no node)

    def __attrs_post_init__(self) -> None:
        self.metrics.watch_state(lambda: self.state)

    def covers(self, namespace: str) -> bool:
        return self.scope.covers(namespace)

    def observe(self, resource: str, kind: str, obj: Mapping[str, Any],
                at: float) -> ev.Event | None:
        """Take one watch or list item of `resource` (a key of WATCHED); return the event it
        queued, if any (an object out of scope or malformed queues none)."""
        event = self.translate(resource, kind, obj, at)
        if event is not None:
            self.inbox.append(event)
        return event

    def translate(self, resource: str, kind: str, obj: Mapping[str, Any],
                  at: float) -> ev.Event | None:
        """The engine event for one watch or list item, or None (out of scope, or malformed:
        logged and counted). Touches no state, so watch threads may call it and queue the
        small event rather than the object (a backlog of events costs little memory)."""
        try:
            meta = obj.get("metadata") or {}
            if not self.covers(str(meta.get("namespace") or "default")):
                return None
            if resource == "rayclusters":
                return translate.raycluster(kind, obj, at)
            if resource == "pods":
                return translate.pod(kind, obj, at)
            if resource == "leases":
                return translate.lease(kind, obj, at)
            return translate.service(kind, obj, at)
        except Exception as exc:  # Malformed, or a shape nothing foresaw: never fatal
            self.malformed += 1
            self.log(f"skipping a malformed {resource} object: {errors.describe(exc)}")
            self.metrics.malformed(resource)
            return None

    def relist(self, lists: Mapping[str, Iterable[Mapping[str, Any]]], at: float) -> None:
        """A fresh list of every resource in scope (at start, or after a watch expired with
        410 Gone): observe all of it, and turn what the engine knew but the list no longer has
        into deletions, so nothing missed while the watch was down stays believed. `lists` may
        be lazy (pages fetched as they are read): each object is observed as it arrives and only
        keys are kept."""
        listed_clusters: set[ev.ClusterKey] = set()
        listed_pods: set[tuple[ev.ClusterKey, str]] = set()
        listed_services: set[ev.ClusterKey] = set()
        listed_leases: set[tuple[str, str]] = set()
        for resource in WATCHED:
            for obj in lists.get(resource, ()):
                event = self.observe(resource, translate.ADDED, obj, at)
                if isinstance(event, ev.ClusterSeen):
                    listed_clusters.add(event.cluster)
                elif isinstance(event, ev.PodSeen):
                    listed_pods.add((event.cluster, event.name))
                elif isinstance(event, ev.LeaseSeen):
                    listed_leases.add((event.namespace, event.install))
                if resource == "services":
                    try:
                        key = translate.service_cluster(obj)
                    except translate.Malformed:
                        key = None
                    if key is not None:
                        listed_services.add(key)
        for key, cs in list(self.state.clusters.items()):
            if not self.covers(key[0]):
                continue
            if cs.obj is not None and key not in listed_clusters:
                self.inbox.append(ev.ClusterDeleted(cluster=key, at=at))
                continue
            for name in list(cs.pods):
                if (key, name) not in listed_pods:
                    self.inbox.append(ev.PodGone(cluster=key, at=at, name=name))
            if cs.service and key not in listed_services:
                self.inbox.append(ev.ServiceGone(cluster=key, at=at))
        for (ns, install), peer in list(self.state.peers.items()):
            if self.covers(ns) and not peer.gone and (ns, install) not in listed_leases:
                self.inbox.append(ev.LeaseGone(namespace=ns, install=install, at=at))

    def synced(self, at: float) -> None:
        self.inbox.append(ev.Synced(at=at))

    def tick(self, at: float) -> None:
        self.inbox.append(ev.Tick(at=at))

    def feed(self, events: Iterable[ev.Event]) -> None:
        self.inbox.extend(events)

    def run(self) -> int:
        """Fold and act on everything in the inbox; return how many events were handled.

        With a budget, API calls wait in per-cluster queues and go out round-robin as the
        budget allows; when it is spent, `resume` asks to be run again later.
        """
        handled = 0
        inbox = self.inbox
        budget = self.budget
        while True:
            while inbox:
                event = inbox.popleft()
                handled += 1
                self.trace("event", self, event)
                try:
                    self.state, actions = planner.step(self.state, event)
                except Exception as exc:  # the engine contains faults per cluster; this is
                    self._engine_fault(event, exc)  # the last line: the process goes on
                    continue
                for action in actions:
                    self.trace("action", self, action)
                    self.metrics.observe(action)
                    priority = CALLS.get(type(action))
                    if budget is not None and priority is not None:
                        budget.put(action.cluster, action, priority)
                    else:
                        self._execute(action, event.at)
            if budget is None or not budget.queued:
                self.metrics.reconciles.inc(handled)
                return handled
            now = self.clock()
            later = budget.drain(now, functools.partial(self._execute_at, now))
            if not inbox:
                if later is not None:
                    self.resume(later)
                self.metrics.reconciles.inc(handled)
                return handled

    def _execute_at(self, at: float, action: act.Action) -> None:
        self._execute(action, at)

    def may_write(self, action: act.Action, at: float) -> bool:
        """The fence: a write to a cluster goes out only while this install holds its claim
        and its lease there is fresh, checked right before the call (a queued write planned
        before a hand-over never runs after it)."""
        if self.state.install is None or not isinstance(action, act.EFFECTS):
            return True
        cs = self.state.clusters.get(action.cluster)
        return cs is not None and claiming.may_act(self.state, cs, at)

    def _execute(self, action: act.Action, at: float) -> None:
        if not self.may_write(action, at):
            self.metrics.fenced.labels(namespace=action.cluster[0],
                                       cluster=action.cluster[1]).inc()
            self.inbox.append(execute.result(action, at, ev.FAILED_OUTCOME,
                                             "fenced: this install no longer holds the claim"))
            return
        if isinstance(action, act.EFFECTS):
            self.trace("write", self, action)
        if type(action) is act.DrainNode:
            self._drain(action, at)
            return
        try:
            outcome = execute.execute(self.api, action, at, log=self._log_line,
                                      requeue=self._requeue, event_time=self.timestamp)
        except Exception as exc:  # the request could not even be built or sent
            self.metrics.failed(action, 0)
            self.log(f"{act.prefix(action.cluster)} ERROR {action.ref} could not be sent: "
                     f"{errors.describe(exc)}")
            outcome = (execute.result(action, at, ev.REJECTED, errors.describe(exc))
                       if isinstance(action, act.RESULTS) else None)
        if outcome is not None:
            if outcome.outcome == ev.FAILED_OUTCOME:
                self.metrics.failed(action, execute.status_of(outcome.reason))
            self.inbox.append(outcome)

    def _drain(self, action: act.DrainNode, at: float) -> None:
        if self.ray is None:
            self.inbox.append(execute.result(action, at, ev.DONE,
                                             "no Ray link: the pod is deleted undrained"))
            return
        try:
            answer = self.ray.drain(action, at)
        except Exception as exc:  # the request could not even be sent
            answer = execute.result(action, at, ev.FAILED_OUTCOME, errors.describe(exc))
        if answer is not None:
            if answer.outcome == ev.FAILED_OUTCOME:
                self.metrics.failed(action, 0)
            self.inbox.append(answer)

    def _engine_fault(self, event: ev.Event, exc: Exception) -> None:
        self.metrics.errors.labels(kind="engine", code="0").inc()
        self.log(f"ERROR the engine failed on {type(event).__name__} and dropped it: "
                 f"{errors.describe(exc)}")

    def _log_line(self, line: act.Log) -> None:
        self.log(line.line)

    def _requeue(self, action: act.Requeue) -> None:
        self.requeue(action.at)
