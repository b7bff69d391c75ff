"""Gentle rolling updates: outdated workers go a few at a time, idle ones first, each
drained, and their type never has fewer than minWorkers running meanwhile."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import actions as act
from engine import events as ev
from tests.builders import raycluster, set_workers
from tests.engine.timelines import SHAPES, run
from tests.engine.world import World

KEY = ("ray", "example-cluster")
TYPE = "worker-node"


def edited(obj: dict[str, Any], image: str, **rolling: int) -> dict[str, Any]:
    """The same cluster with the worker type's image changed (a new launch config)."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["generation"] += 1
    obj["spec"]["podTypes"][1]["podConfig"]["spec"]["containers"][0]["image"] = image
    if rolling:
        obj["spec"]["rollingUpdate"] = rolling
    return obj


def running(world: World, launch_hash: str | None = None) -> int:
    return sum(1 for p in world.pods.values()
               if p.pod_type == TYPE and p.phase == ev.RUNNING and not p.deleting
               and (launch_hash is None or p.launch_hash == launch_hash))


def started(low: int, high: int) -> tuple[World, dict[str, Any]]:
    world = World()
    obj = set_workers(raycluster(maxWorkers=10), min_workers=low, max_workers=high)
    world.apply_cluster(obj)
    world.settle()
    world.report_load(KEY, idle=10.0)
    return world, obj


def test_min_workers_stay_running_while_each_is_replaced_one_at_a_time() -> None:
    world, obj = started(3, 3)
    old = {p.launch_hash for p in world.pods.values() if p.pod_type == TYPE}
    creates = [a for a in world.actions if isinstance(a, act.CreatePod) and a.role == ev.WORKER]
    world.apply_cluster(edited(obj, "rayproject/ray:next"))
    low = running(world)
    for _ in range(20):
        world.report_load(KEY, idle=10.0)
        world.advance(5.0)
        low = min(low, running(world))
    assert low >= 3  # never below minWorkers, surge included
    assert running(world) == 3 and not {p.launch_hash for p in world.pods.values()
                                        if p.pod_type == TYPE} & old
    new_creates = [a for a in world.actions
                   if isinstance(a, act.CreatePod) and a.role == ev.WORKER][len(creates):]
    assert len(new_creates) == 3 and world.killed_busy == []


def test_idle_outdated_workers_go_before_busy_ones_and_busy_ones_wait() -> None:
    world, obj = started(0, 3)
    world.apply_cluster(set_workers(obj, min_workers=3))
    world.settle()
    names = sorted(p.name for p in world.pods.values() if p.pod_type == TYPE)
    world.busy.add(names[0])  # Ray runs a task there, and its reports say so
    world.report_load(KEY, idle=10.0, busy=[names[0]])
    world.apply_cluster(set_workers(edited(obj, "next", maxUnavailable=1), min_workers=0))
    first = next(a for a in world.actions if isinstance(a, act.DrainNode))
    assert first.name != names[0]  # an idle one first
    world.apply_cluster(set_workers(edited(obj, "next", maxUnavailable=3), min_workers=0))
    world.settle()
    world.report_load(KEY, idle=10.0, busy=[names[0]])
    deleted = [a.name for a in world.actions if isinstance(a, act.DeletePod)]
    assert set(deleted) == set(names[1:])  # the idle ones; the busy one is kept
    world.busy.clear()
    world.advance(31.0)
    world.report_load(KEY, idle=10.0)
    assert names[0] in [a.name for a in world.actions if isinstance(a, act.DeletePod)]


def test_max_unavailable_bounds_the_workers_going_at_once() -> None:
    world, obj = started(0, 4)
    world.apply_cluster(set_workers(obj, min_workers=4))
    world.settle()
    world.answer = lambda a: (ev.FAILED_OUTCOME, "slow") if isinstance(a, act.DrainNode) \
        else None  # drains stay unanswered, as if Ray were slow
    world.apply_cluster(set_workers(edited(obj, "next", maxUnavailable=2), min_workers=0))
    drains = [a for a in world.actions if isinstance(a, act.DrainNode)]
    assert len(drains) == 2


def test_a_rolling_update_setting_out_of_range_is_named() -> None:
    world, obj = started(0, 2)
    world.apply_cluster(edited(obj, "next", maxUnavailable=0))
    assert "spec.rollingUpdate.maxUnavailable" in world.state.clusters[KEY].problems


no_kills = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 1000)),
    st.tuples(st.just("load"), st.just(KEY), st.sampled_from(SHAPES), st.integers(0, 6),
              st.sampled_from([0.0, 10.0, 400.0])),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 5.0, 30.0])),
    st.tuples(st.just("work"), st.integers(0, 1000), st.booleans()),
)


@settings(max_examples=80, deadline=None)
@given(low=st.integers(0, 3), extra=st.integers(0, 2), unavailable=st.integers(1, 3),
       surge=st.integers(0, 2), steps=st.lists(no_kills, max_size=60))
def test_usable_workers_never_drop_below_min_during_an_update(
    low: int, extra: int, unavailable: int, surge: int, steps: list[tuple[object, ...]]
) -> None:
    world, obj = started(low, low + extra)
    assert running(world) >= low
    world.apply_cluster(edited(obj, "next", maxUnavailable=unavailable, maxSurge=surge))
    floor = low if surge else max(0, low - unavailable)  # maxSurge 0: some may be down
    for step in steps:
        run(world, step)
        assert running(world) >= floor
        assert world.killed_busy == []
