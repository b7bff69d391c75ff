"""Side by side with peers, in the same run on the same machine (figures as ratios).

- P1: one scaling decision by `engine.scheduler.nodes_to_launch` against Ray's own
  `ResourceDemandScheduler.get_nodes_to_launch` (the `ray` package) on the same node types,
  nodes and pending bundles; both must decide the same launches.
- P2: replaying the same events into the same state, our fold against the `eventsourcing`
  library's (an aggregate whose events carry ours; the repository folds them from its
  in-memory store).
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.ray_scheduler import ray_nodes_to_launch
from engine import codec, scheduler, snapshots
from engine import events as ev
from engine import state as st

TYPES = {
    "head": scheduler.NodeType(resources={"CPU": 4.0, "memory": 16.0}, min_workers=0,
                               max_workers=0),
    "cpu": scheduler.NodeType(resources={"CPU": 8.0, "memory": 32.0}, min_workers=0,
                              max_workers=2_000),
    "highmem": scheduler.NodeType(resources={"CPU": 4.0, "memory": 64.0}, min_workers=0,
                                  max_workers=1_000),
    "gpu": scheduler.NodeType(resources={"CPU": 8.0, "GPU": 1.0, "memory": 32.0},
                              min_workers=0, max_workers=500),
}
SHAPES = [{"CPU": 1.0}, {"CPU": 2.0, "memory": 4.0}, {"memory": 16.0}, {"CPU": 1.0, "GPU": 1.0},
          {"CPU": 4.0}]


def decision_case(bundles: int, *, seed: int = 0) -> dict[str, Any]:
    """Mixed CPU/memory/GPU bundles over three worker types (the anchor's setting)."""
    rng = random.Random(seed)
    demand = [(dict(rng.choice(SHAPES)), 1) for _ in range(bundles)]
    return {"types": TYPES, "head_type": "head", "max_workers": 3_500,
            "upscaling_speed": 1_000_000.0, "nodes": [("head", {"CPU": 4.0, "memory": 16.0})],
            "launching": {}, "demand": scheduler.group(demand)}


def _seconds(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def scheduler_side_by_side(bundles: int, *, runs: int, ray_runs: int) -> dict[str, Any]:
    case = decision_case(bundles)
    ours_s, ours = _seconds(lambda: scheduler.nodes_to_launch(**case), runs)
    ray_s, theirs = _seconds(lambda: ray_nodes_to_launch(head_index=0, **case), ray_runs)
    same = dict(ours.to_launch) == theirs[0] and scheduler.expand(ours.unfulfilled) == theirs[1]
    return {"ours_seconds": ours_s, "ray_seconds": ray_s, "ratio": ray_s / ours_s,
            "same_launches": same, "launches": sum(theirs[0].values())}


def replay_side_by_side(events: list[ev.Event]) -> dict[str, Any]:
    """Both fold the same stored events (JSON) into the engine's state, from scratch."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Fleet(Aggregate):
        """Every observed fact of every cluster, folded into the engine's state."""

        def __init__(self) -> None:
            self.state = st.initial(synced=True)

        @event("Observed")
        def observe(self, data: dict[str, Any]) -> None:
            self.state = st.evolve(self.state, codec.event_from_dict(data))

    records = [codec.event_to_dict(e) for e in events]
    app: Any = Application(env={"AGGREGATE_CACHE_MAXSIZE": "0"})
    fleet = Fleet()
    for data in records:
        fleet.observe(data)
    app.save(fleet)
    theirs_s, folded = _seconds(lambda: app.repository.get(fleet.id), 1)
    lines = [json.dumps(r, separators=(",", ":")) for r in records]

    def ours() -> st.State:
        state, loads, decode, evolve = st.initial(synced=True), json.loads, \
            codec.event_from_dict, st.evolve
        for line in lines:
            state = evolve(state, decode(loads(line)))
        return state

    ours_s, state = _seconds(ours, 3)
    same = snapshots.snapshot(state) == snapshots.snapshot(folded.state)
    return {"ours_per_second": len(events) / ours_s,
            "eventsourcing_per_second": len(events) / theirs_s,
            "ratio": theirs_s / ours_s, "same_state": same}
