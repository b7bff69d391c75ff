"""Engine benchmarks: B1 replay throughput, B2 decision latency, bytes per tracked pod.

Every figure is measured on the real `engine.planner.step` (fold, plan, record), on events
recorded from a run (see `bench.workloads`). Timing uses `time.perf_counter_ns`.
"""

from __future__ import annotations

import gc
import json
import random
import time
import tracemalloc
from collections.abc import Callable, Sequence
from typing import Any

from bench import workloads
from engine import codec, planner, snapshots
from engine import events as ev
from engine import state as st


def _timed(count: int, run: Callable[[], st.State]) -> tuple[float, st.State]:
    """Run a whole replay loop with the collector paused; items per second and the state.

    The loop itself is the caller's, so no wrapper is called per event."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        state = run()
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return count / (elapsed / 1e9), state


def replay(events: list[ev.Event]) -> tuple[float, st.State]:
    """Fold and plan every event on a fresh state; return events/s and the final state."""
    step = planner.step

    def run() -> st.State:
        state = st.initial(synced=True)
        for event in events:
            state, _ = step(state, event)
        return state

    return _timed(len(events), run)


def replay_jsonl(lines: list[str]) -> float:
    """B1(b): decode each JSON line, then fold and plan it."""
    step, loads, decode = planner.step, json.loads, codec.event_from_dict

    def run() -> st.State:
        state = st.initial(synced=True)
        for line in lines:
            state, _ = step(state, decode(loads(line)))
        return state

    return _timed(len(lines), run)[0]


def encode_lines(events: Sequence[ev.Event]) -> list[str]:
    return [json.dumps(codec.event_to_dict(e), separators=(",", ":")) for e in events]


def steady_state(*, clusters: int, pods_per_cluster: int) -> tuple[st.State, list[ev.PodSeen]]:
    """A state tracking clusters x pods_per_cluster running workers (their min), settled."""
    world = workloads.InstantWorld(seed=0)
    for i in range(clusters):
        obj = workloads.raycluster(f"c{i}", f"ns{i % 10}", max_workers=pods_per_cluster,
                                   min_workers=pods_per_cluster)
        world.max_workers[(f"ns{i % 10}", f"c{i}")] = pods_per_cluster
        world.send(workloads.cluster_seen(obj, 0.0))
        world.drain(0.0)
    world.drain(0.0)
    world.send(ev.Tick(at=10.0))
    world.drain(10.0)
    pods = [p for cs in world.state.clusters.values() for p in cs.pods.values()
            if p.role == ev.WORKER]
    return world.state, pods


def decision_latency(state: st.State, pods: list[ev.PodSeen], *, samples: int,
                     seed: int = 0) -> dict[str, float]:
    """B2: latency of `step` for one pod event (a watch MODIFIED of a running worker)."""
    rng = random.Random(seed)
    chosen = [rng.choice(pods) for _ in range(samples)]
    now = state.now
    events = [
        ev.PodSeen(cluster=p.cluster, at=now, name=p.name, pod_type=p.pod_type, role=p.role,
                   phase=p.phase, ip=p.ip, launch_hash=p.launch_hash, uid=p.uid)
        for p in chosen
    ]
    step = planner.step
    clock = time.perf_counter_ns
    out = []
    gc.collect()
    gc.disable()
    try:
        for event in events:
            t0 = clock()
            state, _ = step(state, event)
            out.append(clock() - t0)
    finally:
        gc.enable()
    out.sort()
    return {
        "p50_us": out[len(out) // 2] / 1000,
        "p99_us": out[int(len(out) * 0.99)] / 1000,
        "p999_us": out[int(len(out) * 0.999)] / 1000,
    }


def bytes_per_pod(*, clusters: int, pods_per_cluster: int) -> dict[str, float]:
    """Memory the engine state holds per tracked pod (tracemalloc, state built under trace)."""
    _, pods = steady_state(clusters=clusters, pods_per_cluster=pods_per_cluster)
    empty_lines = encode_lines([
        workloads.cluster_seen(workloads.raycluster(f"c{i}", f"ns{i % 10}",
                                                    max_workers=pods_per_cluster), 0.0)
        for i in range(clusters)
    ])
    pod_lines = encode_lines(pods)
    del pods
    gc.collect()

    def build(lines: list[str]) -> int:
        tracemalloc.start()
        state = st.initial(synced=False)  # fold only: what is tracked, not what is decided
        for line in lines:
            state = st.evolve(state, codec.event_from_dict(json.loads(line)))
        gc.collect()
        size = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del state
        return size

    base = build(empty_lines)
    full = build(empty_lines + pod_lines)
    n = clusters * pods_per_cluster
    return {"bytes_per_pod": (full - base) / n, "base_bytes_per_cluster": base / clusters}


def toy_events(*, clusters: int = 1_000, pods: int = 100, events: int = 200_000,
               seed: int = 0) -> list[tuple[int, int, int]]:
    """A reference reducer's input: (cluster, pod, up or down) tuples."""
    rng = random.Random(seed)
    return [(rng.randrange(clusters), rng.randrange(pods), rng.randrange(2))
            for _ in range(events)]


def toy_reducer(events: list[tuple[int, int, int]], *, top: int = 100) -> float:
    """The machine's speed now: a fixed reducer, the simplest event loop Python can run
    (tuple events, mutable state, a decision after each event). Timed right before each B1
    run, it shows how fast this shared machine was at that moment: its runs vary by as
    much as the engine's do when neighbours are busy."""
    live: dict[int, set[int]] = {}
    decisions = 0
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for cluster, pod, up in events:
            pods = live.get(cluster)
            if pods is None:
                pods = live[cluster] = set()
            if up:
                pods.add(pod)
            else:
                pods.discard(pod)
            if len(pods) > top:
                decisions += 1
        elapsed = time.perf_counter_ns() - start
    finally:
        gc.enable()
    return len(events) / (elapsed / 1e9)


def measure(fn: Callable[[], float], runs: int) -> dict[str, Any]:
    values = [fn() for _ in range(runs)]
    values.sort()
    return {"median": values[len(values) // 2], "min": values[0], "max": values[-1],
            "runs": runs}


def restart(events: list[ev.Event], *, tail: int) -> dict[str, Any]:
    """B6: the state after all `events`, never stopped, against a restart: the snapshot taken
    `tail` events before the end, written as JSON, read back and restored, then the tail
    folded. Returns the restart's seconds (JSON load + restore + tail) and whether the two
    states are equal."""
    step = planner.step
    head, rest = events[:-tail], events[-tail:]
    state = st.initial(synced=True)
    for event in head:
        state = step(state, event)[0]
    text = json.dumps(snapshots.snapshot(state), separators=(",", ":"))
    for event in rest:
        state = step(state, event)[0]
    never_stopped = snapshots.snapshot(state)
    # A restarted process holds none of what this one built to compare with (the event log,
    # the never-stopped state): frozen out of the collector's reach, so the restart pays the
    # collections a fresh process would (on what it restores), not walks over those.
    gc.collect()
    gc.freeze()
    try:
        start = time.perf_counter()
        restored = snapshots.restore(json.loads(text))
        loaded = time.perf_counter()
        for event in rest:
            restored = step(restored, event)[0]
        done = time.perf_counter()
    finally:
        gc.unfreeze()
    return {"seconds": done - start, "restore_seconds": loaded - start,
            "snapshot_bytes": len(text), "equal": snapshots.snapshot(restored) == never_stopped}


def replay_recorded(events: list[ev.Event], folder: Any) -> tuple[float, int]:
    """R1: `replay` with every event and action written by the live operator's recorder
    (`driver.record`, as `ray-operator --record` runs it); events/s and bytes written."""
    from driver import record

    step = planner.step
    holder = [st.initial(synced=True)]
    recorder = record.Recorder(folder, "bench", lambda: holder[0], keep=1_000_000)

    def run() -> st.State:
        state = holder[0]
        for event in events:
            recorder("event", None, event)
            state, actions = step(state, event)
            holder[0] = state
            for action in actions:
                recorder("action", None, action)
        recorder.close()
        return state

    rate, _ = _timed(len(events), run)
    written = sum(p.stat().st_size for p in record.segments(folder))
    return rate, written
