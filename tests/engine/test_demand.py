"""Demand no launch covers is visible: infeasible bundles as a Warning Event, a condition and
a metric; bundles held back by a maximum as a condition with counts."""

from __future__ import annotations

from typing import Any

from driver.metrics import Metrics
from engine import actions as act
from tests.builders import raycluster, set_workers
from tests.engine.world import World

KEY = ("ray", "example-cluster")


def condition(world: World, kind: str) -> dict[str, Any]:
    return next(c for c in world.status[KEY]["conditions"] if c["type"] == kind)


def cluster(low: int = 0, high: int = 1) -> World:
    world = World()
    world.apply_cluster(set_workers(raycluster(), min_workers=low, max_workers=high))
    world.settle()
    return world


def test_a_bundle_no_type_can_hold_is_told_once_and_shown() -> None:
    world = cluster()
    for _ in range(3):
        world.report_load(KEY, pending=[({"CPU": 64.0}, 3)])
        world.advance(6.0)
    feasible = condition(world, "DemandFeasible")
    assert feasible["status"] == "False" and feasible["reason"] == "NoPodTypeFits"
    assert "{CPU: 64}" in feasible["message"]
    assert world.status[KEY]["pendingDemand"] == {"infeasible": 3, "heldBack": 0}
    warnings = [a for a in world.actions if isinstance(a, act.EmitEvent)
                and a.reason == "InfeasibleDemand"]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    world.report_load(KEY)
    world.advance(6.0)
    assert condition(world, "DemandFeasible")["status"] == "True"


def test_demand_held_back_by_a_types_max_workers_is_counted() -> None:
    world = cluster(0, 1)
    world.report_load(KEY, pending=[({"CPU": 1.0}, 5)])
    world.advance(6.0)
    world.report_load(KEY, pending=[({"CPU": 1.0}, 5)])
    world.advance(6.0)
    met = condition(world, "DemandMet")
    assert met["status"] == "False" and met["reason"] == "TypeMaxWorkers"
    assert "at their maxWorkers: worker-node" in met["message"]
    held = world.status[KEY]["pendingDemand"]["heldBack"]
    assert held > 0 and condition(world, "DemandFeasible")["status"] == "True"
    metrics = Metrics()
    metrics.watch_state(lambda: world.state)
    assert metrics.value("ray_operator_pending_demand_bundles", namespace="ray",
                         cluster="example-cluster", kind="held_back") == held
    world.report_load(KEY)
    world.advance(6.0)
    assert condition(world, "DemandMet")["status"] == "True"
