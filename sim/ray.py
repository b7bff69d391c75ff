"""A model of each Ray cluster: nodes, tasks holding resources, pending demand, idle time.

A Ray node is a Running pod whose Ray has started; its resources are what the operator put
in the pod (`RAY_OVERRIDE_RESOURCES`), so the model checks the operator's manifests too.
Workload steps add tasks; a task holds its resources on one node for its duration once
placed; tasks that fit nowhere are the pending demand the operator sees. Placement is FIFO
by group (tasks of the same shape and duration submitted together), first fit over nodes in
join order, as Ray's own scheduler packs. A node with nothing running is idle since its
last task ended (or since it joined).

Every 5 s of virtual time the world turns `report` into the `RayLoad` event a real head's
GCS would give (see adapters/ for the live version).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from attrs import define, field

from engine import events as ev


@define
class TaskGroup:
    """`count` tasks of one shape and duration; `placed` of them run, the rest wait."""

    id: int
    resources: dict[str, float]
    count: int
    duration: float
    submitted_at: float


@define
class RayNode:
    pod: str
    ip: str
    total: dict[str, float]
    used: dict[str, float] = field(factory=dict)
    running: int = 0  # tasks on the node
    idle_since: float = 0.0
    draining: bool = False
    version: int = 0  # bumped on every change a report shows

    def available(self) -> dict[str, float]:
        return {k: v - self.used.get(k, 0.0) for k, v in self.total.items()}

    def fits(self, resources: Mapping[str, float], n: int = 1) -> int:
        """How many copies of `resources` (up to n) fit now."""
        if self.draining:
            return 0
        best = n
        for k, v in resources.items():
            if v <= 0:
                continue
            free = self.total.get(k, 0.0) - self.used.get(k, 0.0)
            best = min(best, int(free // v + 1e-9))
        return max(best, 0)


@define
class Placement:
    """Some tasks of a group running on one node until `ends`."""

    group: int
    node: str
    count: int
    resources: dict[str, float]
    ends: float


@define
class RayCluster:
    key: ev.ClusterKey
    nodes: dict[str, RayNode] = field(factory=dict)  # by pod name, in join order
    waiting: list[TaskGroup] = field(factory=list)
    placements: list[Placement] = field(factory=list)
    requests: list[tuple[dict[str, float], int]] = field(factory=list)
    next_group: int = 0
    finished: int = 0
    lost: int = 0
    head_up: bool = False
    waited: list[tuple[float, int]] = field(factory=list)  # (seconds, tasks) as they start

    def submit(self, resources: Mapping[str, float], count: int, duration: float,
               now: float) -> TaskGroup:
        self.next_group += 1
        group = TaskGroup(id=self.next_group, resources=dict(resources), count=count,
                          duration=duration, submitted_at=now)
        self.waiting.append(group)
        return group

    def join(self, pod: str, ip: str, total: Mapping[str, float], now: float) -> None:
        self.nodes[pod] = RayNode(pod=pod, ip=ip, total=dict(total), idle_since=now)

    def leave(self, pod: str, now: float) -> int:
        """The node is gone: its running tasks go back to waiting; return how many."""
        node = self.nodes.pop(pod, None)
        if node is None:
            return 0
        lost = 0
        keep = []
        for p in self.placements:
            if p.node == pod:
                lost += p.count
                self._requeue(p, now)
            else:
                keep.append(p)
        self.placements = keep
        self.lost += lost
        return lost

    def _requeue(self, p: Placement, now: float) -> None:
        for group in self.waiting:
            if group.id == p.group:
                group.count += p.count
                return
        self.waiting.insert(0, TaskGroup(id=p.group, resources=p.resources, count=p.count,
                                         duration=p.ends - now, submitted_at=now))

    def schedule(self, now: float) -> list[Placement]:
        """Place waiting tasks first-fit; return the new placements (the world times them)."""
        new: list[Placement] = []
        still: list[TaskGroup] = []
        for group in self.waiting:
            for node in self.nodes.values():
                if group.count == 0:
                    break
                n = node.fits(group.resources, group.count)
                if n <= 0:
                    continue
                for k, v in group.resources.items():
                    node.used[k] = node.used.get(k, 0.0) + v * n
                node.running += n
                node.version += 1
                group.count -= n
                self.waited.append((now - group.submitted_at, n))
                placement = Placement(group=group.id, node=node.pod, count=n,
                                      resources=group.resources, ends=now + group.duration)
                self.placements.append(placement)
                new.append(placement)
            if group.count:
                still.append(group)
        self.waiting = still
        return new

    def finish(self, placement: Placement, now: float) -> None:
        if placement not in self.placements:
            return
        self.placements.remove(placement)
        self.finished += placement.count
        node = self.nodes.get(placement.node)
        if node is None:
            return
        for k, v in placement.resources.items():
            node.used[k] = max(0.0, node.used.get(k, 0.0) - v * placement.count)
        node.running -= placement.count
        node.version += 1
        if node.running == 0:
            node.idle_since = now

    def pending(self) -> int:
        return sum(g.count for g in self.waiting)

    def report(self, now: float, sent: dict[str, int] | None = None
               ) -> tuple[ev.RayLoad, dict[str, int]]:
        """The load report as the GCS gives it; with `sent` (node versions an operator
        already has) only the changes since then. Returns the report and the new versions."""
        shapes: dict[tuple[tuple[str, float], ...], int] = {}
        for group in self.waiting:
            shape = tuple(sorted(group.resources.items()))
            shapes[shape] = shapes.get(shape, 0) + group.count
        versions = {n.ip: n.version for n in self.nodes.values()}
        changed = [n for n in self.nodes.values()
                   if sent is None or sent.get(n.ip) != n.version]
        gone = () if sent is None else tuple(ip for ip in sent if ip not in versions)
        load = ev.RayLoad(
            cluster=self.key,
            at=now,
            pending=tuple(ev.Bundle(resources=dict(s), count=c) for s, c in shapes.items()),
            requests=tuple(ev.Bundle(resources=dict(r), count=c) for r, c in self.requests),
            nodes=tuple(
                ev.RayNode(ip=n.ip, total=dict(n.total), available=n.available(),
                           idle_seconds=0.0 if n.running else max(1e-3, now - n.idle_since))
                for n in changed
            ),
            partial=sent is not None,
            gone=gone,
        )
        return load, versions


def pod_resources(pod: Mapping[str, Any]) -> dict[str, float]:
    """What Ray on this pod advertises: RAY_OVERRIDE_RESOURCES of its first container."""
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    for env in containers[0].get("env") or []:
        if env.get("name") == "RAY_OVERRIDE_RESOURCES":
            try:
                value = json.loads(env.get("value") or "{}")
            except ValueError:
                return {}
            return {str(k): float(v) for k, v in value.items()}
    return {}
