"""Simulator benchmarks: B3 (burst up and down) and B5 (fairness under an API budget).

Both run the real world (`sim.world`): in-memory API, kubelet, Ray model and the operator
loop, in virtual time; the wall clock only measures how long the simulation takes.
"""

from __future__ import annotations

import time
from typing import Any

from bench import workloads
from engine.labels import LABEL_CLUSTER, LABEL_KIND
from sim.api import Client
from sim.scenario import OperatorSpec, Scenario
from sim.timeline import Step
from sim.world import World, tune_gc


def _scenario(name: str, *, operators: tuple[OperatorSpec, ...], steps: list[Step],
              delay: float, jitter: float, duration: float) -> Scenario:
    return Scenario(name=name, source="(bench)", description="", seed=0, duration=duration,
                    nodes=(), startup_delay=delay, startup_jitter=jitter, operators=operators,
                    timeline=tuple(sorted(steps, key=lambda s: (s.at, s.index))), expect=())


def _cluster(name: str, namespace: str, *, size: int, top: int) -> dict[str, Any]:
    obj = workloads.raycluster(name, namespace, max_workers=top, min_workers=size)
    obj["spec"]["podTypes"][1]["maxWorkers"] = top
    del obj["metadata"]["uid"], obj["metadata"]["generation"]
    return obj


def burst(*, clusters: int, workers: int) -> dict[str, float]:
    """B3: every cluster goes 0 -> `workers` workers (a `helm upgrade` of the bounds), waits
    until all run, then back to 0; pods start after 1-5 s (kwok-style delay and jitter)."""
    steps: list[Step] = []
    index = 0
    for i in range(clusters):
        ns, name = f"ns{i % 10}", f"c{i}"
        for at, size, top in ((0.0, 0, workers), (10.0, workers, workers), (120.0, 0, 0)):
            index += 1
            steps.append(Step(at=at, kind="apply", args=_cluster(name, ns, size=size, top=top),
                              index=index))
    scenario = _scenario("B3", operators=(OperatorSpec(name="op", namespace="default",
                                                       scope="cluster"),),
                         steps=steps, delay=1.0, jitter=4.0, duration=240.0)
    tune_gc()
    world = World(scenario=scenario)
    running: set[str] = set()
    marks: dict[str, float] = {}
    pods = clusters * workers

    def watch(resource: str, kind: str, obj: dict[str, Any]) -> None:
        if resource != "pods" or obj["metadata"]["labels"].get(LABEL_KIND) != "worker":
            return
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            running.discard(name)
        elif (obj.get("status") or {}).get("phase") == "Running":
            running.add(name)
        if len(running) == pods and "up" not in marks:
            marks["up"] = world.now
        if "up" in marks and world.now >= 120.0 and not running and "down" not in marks:
            marks["down"] = world.now

    world.api.watchers.append(watch)
    started = time.perf_counter()
    world.start()
    world.schedule(scenario.timeline)
    world.advance_to(240.0)
    wall = time.perf_counter() - started
    return {"wall_seconds": wall, "events_per_second": world.events / wall,
            "engine_events": float(world.events), "pods": float(pods),
            "pods_per_second": 2 * pods / wall,
            "virtual_up_seconds": marks.get("up", float("nan")) - 10.0,
            "virtual_down_seconds": marks.get("down", float("nan")) - 120.0,
            "api_calls_per_pod": sum(_client(world).calls.values()) / pods}


def _client(world: World) -> Client:
    client = world.operators["op"].api
    assert isinstance(client, Client)
    return client


def fairness(*, clusters: int, big: int, qps: float, burst_size: int) -> dict[str, float]:
    """B5: under `qps` API calls per second, cluster 0 asks for `big` more workers while the
    others each ask for one, arriving one by one over the next 20 s; how long does a small
    cluster wait for its first call (its pod create)?"""
    steps: list[Step] = []
    index = 0
    for i in range(clusters):
        index += 1
        steps.append(Step(at=0.0, kind="apply", index=index,
                          args=_cluster(f"c{i}", f"ns{i % 10}", size=0, top=big)))
    start = 300.0  # every head and Service is up by then, even at this budget
    index += 1
    steps.append(Step(at=start, kind="apply", index=index,
                      args=_cluster("c0", "ns0", size=big, top=big)))
    asked: dict[tuple[str, str], float] = {}
    for i in range(1, clusters):
        at = start + 1.0 + 20.0 * (i - 1) / max(1, clusters - 1)
        index += 1
        steps.append(Step(at=at, kind="apply", index=index,
                          args=_cluster(f"c{i}", f"ns{i % 10}", size=1, top=big)))
        asked[(f"ns{i % 10}", f"c{i}")] = at
    operator = OperatorSpec(name="op", namespace="default", scope="cluster", qps=qps,
                            burst=burst_size)
    scenario = _scenario("B5", operators=(operator,), steps=steps, delay=1.0, jitter=0.0,
                         duration=start + 60.0)
    world = World(scenario=scenario)
    first: dict[tuple[str, str], float] = {}
    creates: list[float] = []

    def watch(resource: str, kind: str, obj: dict[str, Any]) -> None:
        if resource != "pods" or kind != "ADDED":
            return
        labels = obj["metadata"]["labels"]
        if labels.get(LABEL_KIND) != "worker":
            return
        key = (obj["metadata"]["namespace"], labels[LABEL_CLUSTER])
        if world.now >= start and key == ("ns0", "c0"):
            creates.append(world.now)
        if key in asked and key not in first and world.now >= asked[key]:
            first[key] = world.now

    world.api.watchers.append(watch)
    started = time.perf_counter()
    world.start()
    client = _client(world)
    client.times = []
    world.schedule(scenario.timeline)
    world.advance_to(scenario.duration)
    wall = time.perf_counter() - started
    waits = sorted(first[k] - asked[k] for k in asked if k in first)
    missing = len(asked) - len(waits)
    times = [t for t in client.times if t >= start]
    busy = [t for t in times if t <= max(creates)] if creates else []  # until the big one is done
    window = max(busy) - min(busy) if len(busy) > 1 else 0.0
    peak, first_i = 0, 0
    for i, t in enumerate(times):
        while times[first_i] <= t - 1.0:
            first_i += 1
        peak = max(peak, i - first_i + 1)
    return {
        "p50_wait_seconds": waits[len(waits) // 2] if waits else float("nan"),
        "p99_wait_seconds": waits[int(len(waits) * 0.99)] if waits else float("nan"),
        "max_wait_seconds": waits[-1] if waits else float("nan"),
        "small_clusters_never_served": float(missing),
        "calls_per_second_while_busy": len(busy) / window if window else float("nan"),
        "peak_calls_in_one_second": float(peak),
        "wall_seconds": wall,
    }
