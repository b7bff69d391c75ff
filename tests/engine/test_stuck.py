"""Pods that never start: replaced after the timeout with a Warning naming why, their type
backed off, and demand sent to another type that fits meanwhile."""

from __future__ import annotations

import copy
from typing import Any

from engine import actions as act
from engine import events as ev
from tests.builders import raycluster, set_workers
from tests.engine.world import World

KEY = ("ray", "example-cluster")


def stuck_deletes(world: World) -> list[act.DeletePod]:
    return [a for a in world.actions if isinstance(a, act.DeletePod) and a.reason == "stuck"]


def worker_creates(world: World, pod_type: str = "worker-node") -> int:
    return sum(1 for a in world.actions if isinstance(a, act.CreatePod)
               and a.pod_type == pod_type)


def test_an_unschedulable_worker_is_replaced_after_the_timeout_with_backoff() -> None:
    world = World(unschedulable={"worker-node"})
    world.apply_cluster(set_workers(raycluster(workerStartTimeoutMinutes=1), min_workers=1))
    world.settle()
    assert worker_creates(world) == 1 and not stuck_deletes(world)
    world.advance(59.0)
    assert not stuck_deletes(world)
    world.advance(2.0)
    [deleted] = stuck_deletes(world)
    assert deleted.pod_type == "worker-node"
    [told] = [a for a in world.actions if isinstance(a, act.EmitEvent)
              and a.reason == "WorkerPodStuck"]
    assert told.type == "Warning" and "Unschedulable: 0/3 nodes" in told.message
    assert worker_creates(world) == 1  # its type waits 10 s
    world.advance(11.0)
    assert worker_creates(world) == 2
    world.advance(61.0)  # the second one is stuck too: 20 s now
    assert len(stuck_deletes(world)) == 2 and worker_creates(world) == 2
    world.advance(21.0)
    assert worker_creates(world) == 3


def test_a_running_worker_ray_never_joined_is_stuck_too() -> None:
    world = World()
    world.apply_cluster(set_workers(raycluster(workerStartTimeoutMinutes=1), min_workers=1))
    world.settle()
    head = next(p for p in world.pods.values() if p.role == ev.HEAD)
    world.send(ev.RayLoad(cluster=KEY, at=world.now, nodes=(  # Ray knows the head only
        ev.RayNode(ip=head.ip, total={"CPU": 1.0}, available={"CPU": 1.0}),)))
    world.advance(61.0)
    [told] = [a for a in world.actions if isinstance(a, act.EmitEvent)
              and a.reason == "WorkerPodStuck"]
    assert "Ray did not start on it" in told.message


def test_a_worker_that_starts_is_never_stuck() -> None:
    world = World()
    world.apply_cluster(set_workers(raycluster(workerStartTimeoutMinutes=1), min_workers=2))
    world.settle()
    world.report_load(KEY)
    world.advance(600.0)
    world.report_load(KEY)
    assert not stuck_deletes(world)


def two_types() -> dict[str, Any]:
    obj = raycluster(maxWorkers=4, workerStartTimeoutMinutes=1)
    other = copy.deepcopy(obj["spec"]["podTypes"][1])
    other["name"] = "other-node"
    obj["spec"]["podTypes"].append(other)
    for t in obj["spec"]["podTypes"][1:]:
        t["minWorkers"], t["maxWorkers"], t["rayResources"] = 0, 2, {"CPU": 1}
    return obj


def test_demand_goes_to_another_type_while_one_is_unavailable() -> None:
    world = World()
    world.apply_cluster(two_types())
    world.settle()
    demand = [({"CPU": 1.0}, 2)]  # the head takes one
    world.report_load(KEY, pending=demand)
    [first] = [a.pod_type for a in world.actions if isinstance(a, act.CreatePod)
               and a.role == ev.WORKER]
    pod = next(p for p in world.pods.values() if p.pod_type == first)
    world.send(ev.PodSeen(cluster=KEY, at=world.now, name=pod.name, pod_type=first,
                          role=ev.WORKER, phase=ev.PENDING, launch_hash=pod.launch_hash,
                          created=pod.created, waiting="ErrImagePull: no such image"))
    pod.phase = ev.PENDING  # the image cannot be pulled: it never runs
    world.advance(61.0)
    world.report_load(KEY, pending=demand)
    assert [d.name for d in stuck_deletes(world)] == [pod.name]
    later = [a.pod_type for a in world.actions if isinstance(a, act.CreatePod)
             and a.role == ev.WORKER]
    assert later[1:] and set(later[1:]) == {"other-node", "worker-node"} - {first}


def test_zero_turns_the_timeout_off() -> None:
    world = World(unschedulable={"worker-node"})
    world.apply_cluster(set_workers(raycluster(workerStartTimeoutMinutes=0), min_workers=1))
    world.settle()
    world.advance(3600.0)
    world.report_load(KEY)
    assert not stuck_deletes(world)
