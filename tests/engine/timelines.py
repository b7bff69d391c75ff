"""Random timelines for the engine's properties: two clusters, and steps that deliver
replies and watch events out of order, report Ray load, advance time, kill pods and have Ray
start or end work on a worker (which load reports, being a few seconds old, do not show)."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from engine import codec
from engine import events as ev
from tests.builders import raycluster, set_workers
from tests.engine.world import World

KEYS = [("ray", "a"), ("ray", "b")]


SHAPES = [{"CPU": 1.0}, {"CPU": 1.0, "example-resource-a": 1.0}, {"GPU": 1.0}]


ops = st.one_of(
    st.tuples(st.just("deliver"), st.integers(0, 1000)),
    st.tuples(st.just("deliver"), st.integers(0, 1000)),
    st.tuples(st.just("deliver"), st.integers(0, 1000)),
    st.tuples(st.just("load"), st.sampled_from(KEYS), st.sampled_from(SHAPES),
              st.integers(0, 30), st.sampled_from([0.0, 10.0, 400.0])),
    st.tuples(st.just("advance"), st.sampled_from([1.0, 5.0, 30.0])),
    st.tuples(st.just("loads"), st.sampled_from(KEYS), st.sampled_from(SHAPES),
              st.integers(0, 30), st.sampled_from([0.0, 10.0, 400.0]),
              st.lists(st.sampled_from([1.0, 5.0, 30.0]), min_size=2, max_size=5)),
    st.tuples(st.just("kill"), st.sampled_from(KEYS), st.booleans()),
    st.tuples(st.just("work"), st.integers(0, 1000), st.booleans()),
)


def bounded_world(low: int, high: int) -> World:
    world = World()
    for key in KEYS:
        obj = set_workers(raycluster(key[1], key[0]), min_workers=low, max_workers=high)
        obj["spec"]["maxWorkers"] = high
        world.apply_cluster(obj)
    return world


def run(world: World, op: tuple[object, ...]) -> None:
    kind = op[0]
    if kind == "deliver" and world.queue:
        world.deliver_stream(int(op[1]))  # type: ignore[call-overload]
    elif kind == "load":
        _, key, shape, count, idle = op
        if key in world.state.clusters:
            world.report_load(key, pending=[(shape, count)] if count else [], idle=idle)  # type: ignore[arg-type]
    elif kind == "loads":  # the same report every few seconds, as a Ray head sends it
        _, key, shape, count, idle, gaps = op
        for gap in gaps:  # type: ignore[attr-defined]
            if key not in world.state.clusters:
                break
            world.report_load(key, pending=[(shape, count)] if count else [], idle=idle)  # type: ignore[arg-type]
            world.advance(gap)
    elif kind == "advance":
        world.now += float(op[1])  # type: ignore[arg-type]
        world.send(ev.Tick(at=world.now))
    elif kind == "kill":
        _, key, head = op
        names = [p.name for p in world.pods.values()
                 if p.cluster == key and (p.role == ev.HEAD) == head]
        if names:
            world.kill(names[0])
    elif kind == "work":  # Ray places a task on a running worker (never a drained one), or
        _, index, start = op  # one ends
        running = sorted(p.name for p in world.pods.values()
                         if p.role == ev.WORKER and p.phase == ev.RUNNING and not p.deleting
                         and p.name not in world.drained)
        if start and running:
            world.busy.add(running[int(index) % len(running)])  # type: ignore[call-overload]
        elif not start and world.busy:
            world.busy.discard(sorted(world.busy)[int(index) % len(world.busy)])  # type: ignore[call-overload]


def encoded(actions: list[object]) -> list[str]:
    return [json.dumps(codec.action_to_dict(a), sort_keys=True) for a in actions]  # type: ignore[arg-type]
