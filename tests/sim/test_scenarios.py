"""Every bundled scenario passes, deterministically, and its trace replays exactly."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from engine import claims
from sim import cli, report
from sim.scenario import load
from sim.world import World

SCENARIOS = sorted(cli.bundled())


@pytest.mark.parametrize("name", SCENARIOS)
def test_bundled_scenario_passes(name: str) -> None:
    world = World(scenario=load(cli.bundled()[name]))
    world.run()
    failed = [r for r in world.results if not r["ok"]]
    assert failed == [] and world.violations == []
    assert world.results, "a bundled scenario must check something"


@pytest.mark.parametrize("name", SCENARIOS)
def test_same_seed_gives_the_same_trace_and_replay_reproduces_it(name: str) -> None:
    traces = []
    for _ in range(2):
        out = io.StringIO()
        World(scenario=load(cli.bundled()[name]), trace_out=out).run()
        traces.append(out.getvalue())
    assert traces[0] == traces[1]
    ok, message, events = report.replay(io.StringIO(traces[0]))
    assert ok, message
    assert events > 0


def test_replay_reports_the_first_difference() -> None:
    out = io.StringIO()
    World(scenario=load(cli.bundled()["head-kill"]), trace_out=out).run()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    target = next(line for line in lines if line["type"] == "CreatePod")
    target["name"] = "someone-else"
    ok, message, _ = report.replay(io.StringIO("\n".join(json.dumps(x) for x in lines)))
    assert not ok
    assert f"trace line {target['seq']}" in message and "name=" in message


def test_summary_has_the_documented_shape() -> None:
    world = World(scenario=load(cli.bundled()["scaling"]))
    world.run()
    result = report.summary(world, wall_seconds=1.0)
    assert set(result) >= {"scenario", "seed", "passed", "virtual_seconds", "wall_seconds",
                           "events", "expectations", "clusters", "actions", "violations"}
    assert result["clusters"]["scale/example-cluster"]["pods"] == 1
    assert result["actions"]["CreatePod"] > 30


def test_status_worker_counts_drop_to_zero_in_the_api() -> None:
    """A status is a merge patch: a type that went to zero must be written as 0."""
    world = World(scenario=load(cli.bundled()["scaling"]))
    world.run()
    status = world.api.objects["rayclusters"][("scale", "example-cluster")]["status"]
    assert status["workers"] == {"rayHeadType": 0, "rayWorkerType": 0}
    assert status["desiredWorkers"] == {"rayHeadType": 0, "rayWorkerType": 0}


def test_forbidden_mix_ends_with_one_manager_and_shows_the_conflict(tmp_path: Path) -> None:
    """The legacy docs' forbidden mix, a namespaced and a cluster-scoped operator over one
    namespace: the namespaced one manages the cluster, nobody else writes to it, and the
    loser's conflict is visible as a condition, a Warning Event, a log line and a metric."""
    cluster = (Path(cli.__file__).parent / "scenarios/clusters/example-cluster.yaml").read_text()
    (tmp_path / "c.yaml").write_text(cluster)
    path = tmp_path / "mix.yaml"
    path.write_text(yaml.safe_dump({
        "name": "forbidden-mix", "duration": "60s",
        "operators": [{"name": "wide", "scope": "cluster"},
                      {"name": "narrow", "namespace": "ray", "scope": "namespace"}],
        "timeline": [{"at": "0s", "applyFile": "c.yaml"}],
    }))
    lines: list[str] = []
    world = World(scenario=load(path), log=lines.append)
    world.run()
    assert world.violations == []
    obj = world.api.objects["rayclusters"][("ray", "example-cluster")]
    claim = claims.parse(obj)
    assert claim is not None and claim.install == "narrow" and "wide" in claim.contenders
    conflict = next(c for c in obj["status"]["conditions"] if c["type"] == "OwnershipConflict")
    assert conflict["status"] == "True" and "wide" in conflict["message"]
    assert obj["status"]["managedBy"] == "narrow"
    warnings = [e for e in world.api.objects["events"].values()
                if e["reason"] == "OwnershipConflict" and e["type"] == "Warning"]
    assert len(warnings) == 1 and warnings[0]["involvedObject"]["name"] == "example-cluster"
    assert any(line.startswith("[wide] example-cluster,ray: WARNING narrow manages")
               for line in lines)
    metric = world.operators["wide"].metrics.value(
        "ray_operator_ownership_conflicts_total", namespace="ray", cluster="example-cluster")
    assert metric == 1.0


def stale_writes(world_trace: str) -> list[str]:
    """Writes the cut-off install decided in the `partition` scenario after its lease
    deadline (renewals fail from t=20; the last success at t=15 fences it at t=25)."""
    out = []
    for line in world_trace.splitlines():
        item = json.loads(line)
        if (item["kind"] == "action" and item["operator"] == "ray-operator"
                and item["type"] in ("CreatePod", "DeletePod", "ApplyService", "PatchStatus")
                and 25.0 <= item["t"] < 80.0):
            out.append(f"t={item['t']:g} {item['type']}")
    return out


@pytest.mark.patches_engine
def test_a_cut_off_install_decides_no_write_after_its_lease_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The `partition` scenario: the managing install's renewals fail and its watches drop,
    so it cannot see the takeover; it must stop deciding writes once its lease is stale.
    With the lease check removed it goes on deciding them (the check has teeth)."""
    from engine import claiming

    trace = io.StringIO()
    World(scenario=load(cli.bundled()["partition"]), trace_out=trace).run()
    assert stale_writes(trace.getvalue()) == []
    monkeypatch.setattr(claiming, "lease_fresh", lambda state, namespace, now: True)
    trace = io.StringIO()
    World(scenario=load(cli.bundled()["partition"]), trace_out=trace).run()
    assert stale_writes(trace.getvalue()) != []
