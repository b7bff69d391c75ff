"""Rolling updates and pods that never start, in the simulator, under random timings
(Hypothesis): every run keeps the simulator's invariants (no worker deleted while tasks run
on it, no outdated worker drained while its type has no more than minWorkers running) and
ends with every worker current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.labels import LABEL_HASH, LABEL_KIND
from sim import cli
from sim.scenario import load
from sim.world import World

CLUSTERS = Path(cli.__file__).parent / "scenarios" / "clusters"


def cluster(name: str, low: int, high: int, **spec: Any) -> dict[str, Any]:
    obj = yaml.safe_load((CLUSTERS / name).read_text())
    worker = obj["spec"]["podTypes"][1]
    worker["minWorkers"], worker["maxWorkers"] = low, high
    obj["spec"]["maxWorkers"] = high
    obj["spec"].update(spec)
    return dict(obj)


def run(folder: Path, scenario: dict[str, Any]) -> World:
    path = folder / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    world = World(scenario=load(path))
    world.run()
    return world


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), low=st.integers(0, 3), extra=st.integers(0, 2),
       unavailable=st.integers(1, 3), surge=st.integers(0, 2), tasks=st.integers(0, 5),
       work_at=st.integers(20, 150), seconds=st.integers(5, 150), edit_at=st.integers(30, 200))
def test_a_rolling_update_keeps_min_workers_and_kills_no_task(
    tmp_path: Path, seed: int, low: int, extra: int, unavailable: int, surge: int, tasks: int,
    work_at: int, seconds: int, edit_at: int,
) -> None:
    old = cluster("example-cluster-min3.yaml", low, low + extra)
    new = cluster("example-cluster-min3-upgraded.yaml", low, low + extra,
                  rollingUpdate={"maxUnavailable": unavailable, "maxSurge": surge})
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(old))
    (tmp_path / "new.yaml").write_text(yaml.safe_dump(new))
    timeline: list[dict[str, Any]] = [{"at": "0s", "applyFile": "old.yaml"},
                                      {"at": f"{edit_at}s", "applyFile": "new.yaml"}]
    if tasks:
        timeline.append({"at": f"{work_at}s", "workload": {
            "cluster": "ray/example-cluster",
            "tasks": [{"resources": {"CPU": 1}, "count": tasks, "duration": f"{seconds}s"}]}})
    world = run(tmp_path, {"name": "rolling", "seed": seed, "duration": "900s",
                           "timeline": timeline})
    assert world.violations == []
    hashes = {p["metadata"]["labels"][LABEL_HASH] for p in world.api.objects["pods"].values()
              if p["metadata"]["labels"].get(LABEL_KIND) == "worker"}
    assert len(hashes) <= 1  # every worker current at the end


@pytest.mark.parametrize("timeout", [1, 2])
def test_an_unschedulable_worker_is_replaced_and_told(tmp_path: Path, timeout: int) -> None:
    obj = cluster("example-cluster-min3.yaml", 2, 2, workerStartTimeoutMinutes=timeout)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(obj))
    lines: list[str] = []
    scenario = {"name": "stuck", "seed": 1, "duration": f"{60 * timeout + 100}s",
                "cluster": {"nodes": [{"name": "small", "cpu": 1, "memory": "4Gi",
                                       "count": 2}]},  # the head and one worker fit
                "timeline": [{"at": "0s", "applyFile": "c.yaml"}]}
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    world = World(scenario=load(path), log=lines.append)
    world.run()
    stuck = [line for line in lines if "did not start in" in line]
    assert stuck and "Unschedulable" in stuck[0], lines
    assert world.violations == []


def test_the_status_names_the_manager_again_when_a_cluster_comes_back(tmp_path: Path) -> None:
    """wide manages the cluster, narrow takes it over, then crashes: once its lease lapses
    the cluster is wide's again, and its status says so at once (wide's last status named
    wide itself, but narrow's write came since)."""
    obj = cluster("example-cluster-min3.yaml", 1, 1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(obj))
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump({
        "name": "comeback", "seed": 3, "duration": "120s",
        "operators": [{"name": "wide", "scope": "cluster"},
                      {"name": "narrow", "namespace": "ray", "scope": "namespace",
                       "installed": False}],
        "timeline": [{"at": "0s", "applyFile": "c.yaml"},
                     {"at": "20s", "installOperator": "narrow"},
                     {"at": "50s", "crashOperator": "narrow"}]}))
    world = World(scenario=load(path))
    seen: list[tuple[float, str]] = []

    def sample() -> None:
        rc = world.api.objects["rayclusters"][("ray", "example-cluster")]
        seen.append((world.now, (rc.get("status") or {}).get("managedBy", "")))
        world.at(world.now + 1.0, sample)
    world.at(1.0, sample)
    world.run()
    assert world.violations == []
    managers = [m for _, m in seen]
    assert "narrow" in managers and managers[-1] == "wide"
    back = next(t for t, m in seen if t > 50 and m == "wide")
    assert back < 50 + 15 + 10  # the lease lapses after 15 s; the status follows at once
