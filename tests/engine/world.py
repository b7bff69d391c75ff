"""A tiny deterministic world for engine tests: actions in, observed events out.

Each effect the engine asks for becomes a queue of events the world will report (a create:
the result, the pod Pending, then Running with an IP; a delete: the result, the pod
terminating, then gone). Tests deliver that queue in order (`settle`) or in any order they
choose (`deliver(i)`), which is how stale views and reordered watches are modelled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from attrs import define, field

from engine import actions as act
from engine import events as ev
from engine import planner
from engine import state as st


@define
class WorldPod:
    cluster: ev.ClusterKey
    name: str
    pod_type: str
    role: str
    launch_hash: str
    ip: str
    phase: str = ev.PENDING
    deleting: bool = False
    created: float = 0.0


@define
class World:
    """The engine paired with a world that obeys it; every action is logged."""

    state: st.State = field(factory=lambda: st.initial(synced=True))
    now: float = 0.0
    pods: dict[str, WorldPod] = field(factory=dict)
    queue: list[ev.Event] = field(factory=list)
    timers: list[float] = field(factory=list)
    actions: list[act.Action] = field(factory=list)
    events: list[ev.Event] = field(factory=list)
    deleted: set[str] = field(factory=set)
    double_deletes: list[str] = field(factory=list)
    services: set[ev.ClusterKey] = field(factory=set)
    status: dict[ev.ClusterKey, dict[str, Any]] = field(factory=dict)
    next_ip: int = 1
    delta: bool = False  # send load reports as changes since the previous one
    idle_since: dict[str, float] = field(factory=dict)  # as a Ray head tracks it
    sent: dict[ev.ClusterKey, dict[str, ev.RayNode]] = field(factory=dict)
    busy: set[str] = field(factory=set)  # workers Ray runs work on (it refuses to drain them)
    drained: set[str] = field(factory=set)  # workers Ray accepted to drain
    killed_busy: list[str] = field(factory=list)  # busy workers deleted undrained (a bug)
    unschedulable: set[str] = field(factory=set)  # pod types whose pods never leave Pending
    # how the API answers an action: (outcome, reason), or None for done (it happens)
    answer: Callable[[act.Action], tuple[str, str] | None] = lambda action: None

    def send(self, event: ev.Event) -> tuple[act.Action, ...]:
        self.events.append(event)
        self.state, actions = planner.step(self.state, event)
        self.actions.extend(actions)
        for action in actions:
            self._apply(action)
        return actions

    def apply_cluster(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.send(ev.ClusterSeen(cluster=(meta["namespace"], meta["name"]), at=self.now,
                                 uid=meta["uid"], generation=meta["generation"], obj=obj))

    def _apply(self, action: act.Action) -> None:
        refused = self.answer(action)
        if refused is not None:
            outcome, reason = refused
            self.queue.append(ev.ActionResult(cluster=action.cluster, at=self.now,
                                              action=action.ref, outcome=outcome,
                                              reason=reason))
            return
        if isinstance(action, act.CreatePod):
            labels = action.manifest["metadata"]["labels"]
            ip = f"10.0.{self.next_ip // 250}.{self.next_ip % 250}"
            self.next_ip += 1
            pod = WorldPod(cluster=action.cluster, name=action.name, pod_type=action.pod_type,
                           role=action.role, launch_hash=labels["ray-launch-config"], ip=ip,
                           created=self.now)
            self.pods[action.name] = pod
            self.queue.append(self._result(action))
            self.queue.append(self._seen(pod, ev.PENDING, ip=""))
            if action.pod_type not in self.unschedulable:
                self.queue.append(self._seen(pod, ev.RUNNING, ip=ip))
        elif isinstance(action, act.DrainNode):
            if action.name in self.busy:
                self.queue.append(ev.ActionResult(
                    cluster=action.cluster, at=self.now, action=action.ref,
                    outcome=ev.REFUSED, reason="the node is busy"))
            else:
                self.drained.add(action.name)
                self.queue.append(self._result(action))
        elif isinstance(action, act.DeletePod):
            if action.name in self.busy and action.name not in self.drained:
                self.killed_busy.append(action.name)
            if action.name in self.deleted:
                self.double_deletes.append(action.name)
            self.deleted.add(action.name)
            pod = self.pods.get(action.name)
            self.queue.append(self._result(action))
            if pod is not None and not pod.deleting:
                pod.deleting = True
                self.queue.append(ev.PodGone(cluster=action.cluster, at=self.now,
                                             name=action.name))
        elif isinstance(action, act.ApplyService):
            self.services.add(action.cluster)
            self.queue.append(self._result(action))
        elif isinstance(action, act.PatchStatus):
            self.status[action.cluster] = dict(action.status)
            self.queue.append(self._result(action))
        elif isinstance(action, act.Requeue):
            self.timers.append(action.at)

    def _result(self, action: act.Action) -> ev.ActionResult:
        return ev.ActionResult(cluster=action.cluster, at=self.now, action=action.ref,
                               outcome=ev.DONE)

    def _seen(self, pod: WorldPod, phase: str, *, ip: str) -> ev.PodSeen:
        waiting = "Unschedulable: 0/3 nodes are available" \
            if pod.pod_type in self.unschedulable else ""
        return ev.PodSeen(cluster=pod.cluster, at=self.now, name=pod.name,
                          pod_type=pod.pod_type, role=pod.role, phase=phase, ip=ip,
                          launch_hash=pod.launch_hash, created=pod.created, waiting=waiting)

    def deliver(self, index: int) -> None:
        event = self.queue.pop(index % len(self.queue))
        event = _at(event, self.now)
        if isinstance(event, ev.PodGone):
            self.pods.pop(event.name, None)
        elif isinstance(event, ev.PodSeen) and event.name in self.pods:
            self.pods[event.name].phase = event.phase
        self.send(event)

    def deliver_stream(self, index: int) -> None:
        """Deliver the oldest event of one stream, chosen by `index`: streams may interleave
        in any order, but each keeps its own order (a watch per object, a reply per call)."""
        firsts: dict[tuple[str, str], int] = {}
        for i, event in enumerate(self.queue):
            firsts.setdefault(_stream(event), i)
        keys = list(firsts)
        self.deliver(firsts[keys[index % len(keys)]])

    def settle(self, *, limit: int = 100_000) -> None:
        """Deliver everything in order until the world is quiet."""
        for _ in range(limit):
            if not self.queue:
                return
            self.deliver(0)
        raise AssertionError("the world did not settle")

    def advance(self, seconds: float) -> None:
        """Move time forward, firing timers, and settle."""
        target = self.now + seconds
        while True:
            due = sorted(t for t in self.timers if t <= target)
            if not due:
                break
            self.now = max(self.now, due[0])
            self.timers.remove(due[0])
            self.send(ev.Tick(at=self.now))
            self.settle()
        self.now = target
        self.send(ev.Tick(at=self.now))
        self.settle()

    def kill(self, name: str) -> None:
        """A pod dies outside the operator's control: it disappears, and its watch stream
        reports that after whatever it had not yet reported."""
        pod = self.pods.pop(name)
        self.queue.append(ev.PodGone(cluster=pod.cluster, at=self.now, name=name))

    def report_load(self, cluster: ev.ClusterKey, *, pending: Iterable[tuple[dict[str, float], int]]
                    = (), idle: float = 0.0, busy: Iterable[str] = ()) -> None:
        """A Ray load report: every running pod of `cluster` is a node, idle unless busy."""
        busy = set(busy)
        cs = self.state.clusters[cluster]
        nodes = []
        for pod in self.pods.values():
            if pod.cluster != cluster or pod.phase != ev.RUNNING or pod.deleting:
                continue
            t = cs.spec.pod_types[pod.pod_type] if cs.spec else None
            total = dict(t.resources) if t else {}
            if pod.name in busy or idle <= 0:
                self.idle_since.pop(pod.name, None)
                seconds = 0.0
            else:  # idle time grows from when the node went idle, as the GCS reports it
                since = self.idle_since.setdefault(pod.name, self.now - idle)
                seconds = self.now - since
            nodes.append(ev.RayNode(ip=pod.ip, total=total, available=total,
                                    idle_seconds=seconds))
        pending_bundles = tuple(ev.Bundle(resources=r, count=c) for r, c in pending)
        if not self.delta:
            self.send(ev.RayLoad(cluster=cluster, at=self.now, pending=pending_bundles,
                                 nodes=tuple(nodes)))
        else:
            before = self.sent.get(cluster)
            now = {n.ip: n for n in nodes}
            self.sent[cluster] = now
            if before is None:
                self.send(ev.RayLoad(cluster=cluster, at=self.now, pending=pending_bundles,
                                     nodes=tuple(nodes)))
            else:
                changed = tuple(n for n in nodes if _changed(before.get(n.ip), n))
                gone = tuple(ip for ip in before if ip not in now)
                self.send(ev.RayLoad(cluster=cluster, at=self.now, pending=pending_bundles,
                                     nodes=changed, gone=gone, partial=True))
        self.settle()

    def live(self, cluster: ev.ClusterKey, pod_type: str | None = None) -> int:
        return sum(
            1 for p in self.pods.values()
            if p.cluster == cluster and not p.deleting and p.role == ev.WORKER
            and (pod_type is None or p.pod_type == pod_type)
        )

    def heads(self, cluster: ev.ClusterKey) -> list[str]:
        return [p.name for p in self.pods.values()
                if p.cluster == cluster and p.role == ev.HEAD and not p.deleting]


def _changed(before: ev.RayNode | None, node: ev.RayNode) -> bool:
    """Whether a node's report differs from the last one sent: an idle node that stays
    idle keeps the same idle-since time and need not be sent again."""
    if before is None:
        return True
    same_idle = (before.idle_seconds > 0) == (node.idle_seconds > 0)
    return not (same_idle and dict(before.total) == dict(node.total)
                and dict(before.available) == dict(node.available))


def _stream(event: ev.Event) -> tuple[str, str]:
    if isinstance(event, ev.ActionResult):
        return ("reply", event.action)
    if isinstance(event, ev.PodSeen | ev.PodGone):
        return ("watch", event.name)
    return ("other", type(event).__name__)


def _at(event: ev.Event, now: float) -> ev.Event:
    """The event as observed now (delivery time, not the time it was queued)."""
    return dataclasses.replace(event, at=now)

