"""Drain before delete: a running worker goes only once Ray accepts to drain it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import actions as act
from engine import events as ev
from engine import status
from tests.builders import raycluster, set_workers
from tests.engine.timelines import bounded_world, ops, run
from tests.engine.world import World

KEY = ("ray", "example-cluster")


def idle_cluster(workers: int = 2) -> World:
    """A cluster with `workers` running workers (min 0), whose last load shows no demand."""
    world = World()
    world.apply_cluster(set_workers(raycluster(), min_workers=workers, max_workers=4))
    world.settle()
    world.report_load(KEY)
    world.apply_cluster(set_workers(raycluster(generation=2), min_workers=0, max_workers=4))
    world.settle()
    return world


def removals(world: World, kind: type) -> list[str]:
    return [a.name for a in world.actions if isinstance(a, kind)]  # type: ignore[attr-defined]


def test_an_idle_worker_is_drained_then_deleted() -> None:
    world = idle_cluster()
    world.report_load(KEY, idle=400.0)
    drained, deleted = removals(world, act.DrainNode), removals(world, act.DeletePod)
    assert len(drained) == 2 and deleted == drained
    first = next(a for a in world.actions if isinstance(a, act.DrainNode))
    assert first.reason == "idle" and "idle for" in first.message
    assert world.live(KEY) == 0


def test_a_busy_worker_is_kept_and_asked_again_later() -> None:
    world = idle_cluster()
    busy = sorted(p.name for p in world.pods.values() if p.role == ev.WORKER)[0]
    world.busy.add(busy)  # Ray placed a task there after the report said idle
    world.report_load(KEY, idle=400.0)
    assert busy not in removals(world, act.DeletePod)
    assert world.live(KEY) == 1 and world.killed_busy == []
    told = [a for a in world.actions if isinstance(a, act.EmitEvent)
            and a.reason == "DrainRefused"]
    assert len(told) == 1 and busy in told[0].message and told[0].type == "Normal"
    asked = removals(world, act.DrainNode).count(busy)
    world.advance(5.0)
    world.report_load(KEY, idle=400.0)  # within the hold: not asked again
    assert removals(world, act.DrainNode).count(busy) == asked
    world.busy.discard(busy)
    world.advance(30.0)
    world.report_load(KEY, idle=400.0)
    assert busy in removals(world, act.DeletePod) and world.live(KEY) == 0


def test_a_pending_worker_is_deleted_without_a_drain() -> None:
    world = World()
    world.apply_cluster(set_workers(raycluster(), min_workers=0, max_workers=4))
    world.settle()
    world.apply_cluster(set_workers(raycluster(generation=2), min_workers=2, max_workers=4))
    while any(not (isinstance(e, ev.PodSeen) and e.phase == ev.RUNNING) for e in world.queue):
        world.deliver(next(i for i, e in enumerate(world.queue)
                           if not (isinstance(e, ev.PodSeen) and e.phase == ev.RUNNING)))
    world.apply_cluster(set_workers(raycluster(generation=3), min_workers=0, max_workers=0))
    assert len(removals(world, act.DeletePod)) == 2 and not removals(world, act.DrainNode)


def test_a_drain_ray_cannot_answer_keeps_the_pod_and_backs_off() -> None:
    world = idle_cluster()
    world.answer = lambda a: ((ev.FAILED_OUTCOME, "unreachable")
                              if isinstance(a, act.DrainNode) else None)
    world.report_load(KEY, idle=400.0)
    assert removals(world, act.DrainNode) and not removals(world, act.DeletePod)
    assert world.live(KEY) == 2
    assert world.state.clusters[KEY].retry_at > world.now


def test_the_status_counts_a_draining_worker_as_going() -> None:
    world = idle_cluster(1)
    world.send(ev.RayLoad(cluster=KEY, at=world.now, nodes=tuple(
        ev.RayNode(ip=p.ip, total={"CPU": 1.0}, available={"CPU": 1.0}, idle_seconds=400.0)
        for p in world.pods.values())))
    cs = world.state.clusters[KEY]
    assert cs.draining  # asked; the answer is not delivered yet
    assert status.desired_workers(cs, ["worker-node"]) == {"worker-node": 0}
    assert cs.live["worker-node"] == 1


@settings(max_examples=150, deadline=None)
@given(low=st.integers(0, 2), extra=st.integers(0, 3), steps=st.lists(ops, max_size=60))
def test_no_busy_worker_is_deleted_without_an_accepted_drain(
    low: int, extra: int, steps: list[tuple[object, ...]]
) -> None:
    world = bounded_world(low, low + extra)
    for op in steps:
        run(world, op)
        assert world.killed_busy == []
