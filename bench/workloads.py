"""Event streams for the engine benchmarks, recorded from the engine driving a fast world.

B1 replays a *recorded* run: `record_run` lets the engine decide against an instant world
(pods go Pending then Running at once, deletes complete at once, the Ray head reports a
load every 5 s of virtual time whose demand swings between 0 and ~1.5x the cluster's max),
and keeps every event it fed the engine. The timed part then folds and plans exactly those
events on a fresh state, which is what a replay or a crash recovery does.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from engine import actions as act
from engine import events as ev
from engine import planner
from engine import state as st
from sim.clusters import cluster_object

WORKER_TYPE = "worker"
HEAD_TYPE = "head"


def raycluster(name: str, namespace: str, *, max_workers: int, min_workers: int = 0,
               idle_minutes: float = 0.5) -> dict[str, Any]:
    """The simulator's test cluster (`sim.clusters.cluster_object`) as the API would return
    it (uid, generation), scaling fast (upscalingSpeed 100)."""
    obj = cluster_object(namespace, name, min_workers, max_workers,
                                 idle_minutes=idle_minutes, upscaling_speed=100.0)
    obj["metadata"].update(uid=f"uid-{namespace}-{name}", generation=1)
    return obj


def cluster_seen(obj: dict[str, Any], at: float) -> ev.ClusterSeen:
    meta = obj["metadata"]
    return ev.ClusterSeen(cluster=(meta["namespace"], meta["name"]), at=at, uid=meta["uid"],
                          generation=meta["generation"], obj=obj)


class InstantWorld:
    """Executes the engine's actions at once and reports back; keeps the event log."""

    def __init__(self, *, seed: int, pattern: str = "steps") -> None:
        self.rng = random.Random(seed)
        self.pattern = pattern
        self.state = st.initial(synced=True)
        self.events: list[ev.Event] = []
        self.pods: dict[ev.ClusterKey, dict[str, tuple[str, str, str]]] = {}
        self.queue: list[ev.Event] = []
        self.ips = 0
        self.max_workers: dict[ev.ClusterKey, int] = {}
        self.sent: dict[ev.ClusterKey, dict[str, tuple[float, bool]]] = {}

    def send(self, event: ev.Event) -> None:
        self.events.append(event)
        self.state, actions = planner.step(self.state, event)
        for action in actions:
            self._apply(action, event.at)

    def _apply(self, action: act.Action, now: float) -> None:
        if isinstance(action, act.CreatePod):
            self.ips += 1
            ip = f"10.{self.ips >> 16 & 255}.{self.ips >> 8 & 255}.{self.ips & 255}"
            labels = action.manifest["metadata"]["labels"]
            pods = self.pods.setdefault(action.cluster, {})
            pods[action.name] = (action.pod_type, action.role, ip)
            common = dict(cluster=action.cluster, name=action.name, pod_type=action.pod_type,
                          role=action.role, launch_hash=labels["ray-launch-config"],
                          uid=f"{self.ips:08x}-0000-4000-8000-{self.ips:012x}")  # as the API's
            self.queue.append(ev.ActionResult(cluster=action.cluster, at=now, action=action.ref,
                                              outcome=ev.DONE))
            self.queue.append(ev.PodSeen(at=now, phase=ev.PENDING, **common))
            self.queue.append(ev.PodSeen(at=now, phase=ev.RUNNING, ip=ip, **common))
        elif isinstance(action, act.DeletePod):
            self.pods.get(action.cluster, {}).pop(action.name, None)
            self.queue.append(ev.ActionResult(cluster=action.cluster, at=now, action=action.ref,
                                              outcome=ev.DONE))
            self.queue.append(ev.PodGone(cluster=action.cluster, at=now, name=action.name))
        elif isinstance(action, act.ApplyService | act.PatchStatus | act.DrainNode):
            self.queue.append(ev.ActionResult(cluster=action.cluster, at=now, action=action.ref,
                                              outcome=ev.DONE))

    def drain(self, now: float) -> None:
        while self.queue:
            event = self.queue.pop(0)
            self.send(_retime(event, now))

    def demand(self, key: ev.ClusterKey, now: float, top: int) -> int:
        """Tasks wanting a CPU in cluster `key` at `now`.

        - `steps`: each cluster's demand jumps every 2 minutes (clusters staggered) between
          none, half its maximum and 1.2x its maximum, like batch jobs arriving and ending;
        - `ramp`: demand climbs for a minute to 1.5x the maximum, holds, then stops for two
          minutes; every 5 s report brings new demand, the worst case for the planner.
        """
        if self.pattern == "ramp":
            phase = (now / 60.0) % 4
            return 0 if phase >= 2 else int(top * 1.5 * min(1.0, phase))
        offset = int(key[1][1:]) % 120
        level = int((now + offset) // 120) % 3
        return (0, top // 2, int(top * 1.2))[level]

    def load(self, key: ev.ClusterKey, now: float) -> None:
        pods = self.pods.get(key, {})
        top = self.max_workers[key]
        wanted = self.demand(key, now, top)
        busy = min(wanted, len(pods))
        before = self.sent.get(key)
        state: dict[str, tuple[float, bool]] = {}
        nodes = []
        for i, (_pod_type, role, ip) in enumerate(pods.values()):
            working = role == ev.WORKER and i <= busy
            old = before.get(ip) if before is not None else None
            since = old[0] if old is not None and not working and not old[1] else now - 60.0
            state[ip] = (since, working)
            if old is None or old[1] != working:  # a delta report: changed nodes only
                nodes.append(ev.RayNode(ip=ip, total={"CPU": 1.0},
                                        available={"CPU": 0.0 if working else 1.0},
                                        idle_seconds=0.0 if working else now - since))
        self.sent[key] = state
        gone = tuple(ip for ip in before if ip not in state) if before is not None else ()
        pending = max(0, wanted - busy)
        self.send(ev.RayLoad(
            cluster=key, at=now,
            pending=(ev.Bundle(resources={"CPU": 1.0}, count=pending),) if pending else (),
            nodes=tuple(nodes), partial=before is not None, gone=gone,
        ))




def _retime(event: ev.Event, now: float) -> ev.Event:
    return dataclasses.replace(event, at=now)


def record_run(*, clusters: int, pods_per_cluster: int, events: int, seed: int = 0,
               pattern: str = "steps") -> list[ev.Event]:
    """Run the engine against the instant world until `events` events were fed to it."""
    world = InstantWorld(seed=seed, pattern=pattern)
    keys = []
    for i in range(clusters):
        obj = raycluster(f"c{i}", f"ns{i % 10}", max_workers=pods_per_cluster)
        key = (obj["metadata"]["namespace"], obj["metadata"]["name"])
        keys.append(key)
        world.max_workers[key] = pods_per_cluster
        world.send(cluster_seen(obj, 0.0))
    world.drain(0.0)
    now = 0.0
    while len(world.events) < events:
        now += 1.0
        if pattern == "minmax":
            _edit_bounds(world, keys, now, pods_per_cluster)
        else:  # each second a fifth of the clusters report load (each cluster every 5 s)
            for key in keys[int(now) % 5::5]:
                world.load(key, now)
                world.drain(now)
        world.send(ev.Tick(at=now))
        world.drain(now)
    return world.events[:events]


def _edit_bounds(world: InstantWorld, keys: list[ev.ClusterKey], now: float, top: int) -> None:
    """`helm upgrade` of the worker bounds: every 2 min (clusters staggered) a cluster flips
    between min = max = `top` and min = max = `top` // 10."""
    for key in keys[int(now) % 120::120]:
        cs = world.state.clusters[key]
        obj = cs.obj
        size = top // 10 if cs.spec is not None and cs.spec.pod_types[WORKER_TYPE].min_workers \
            == top else top
        spec = dict(obj["spec"])
        types = [dict(t) for t in spec["podTypes"]]
        types[1].update(minWorkers=size, maxWorkers=size)
        spec.update(podTypes=types, maxWorkers=top)
        meta = dict(obj["metadata"], generation=obj["metadata"]["generation"] + 1)
        world.send(cluster_seen({**obj, "metadata": meta, "spec": spec}, now))
        world.drain(now)
