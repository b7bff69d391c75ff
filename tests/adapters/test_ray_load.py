"""The Ray load adapter against a real local Ray head (the `ray` package): what is submitted
is what is read, the engine's plan on it launches what Ray's own scheduler launches, and idle
time grows on a node with nothing running. Plus the conversion on hand-built messages."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ray.core.generated import autoscaler_pb2 as pb

from adapters import ray_load
from bench.ray_scheduler import ray_nodes_to_launch
from engine import actions as act
from engine import events as ev
from engine import scheduler
from sim.processes import ray_command
from tests.builders import raycluster
from tests.e2e.test_process import free_port
from tests.engine.world import World

pytestmark = pytest.mark.slow
DRIVER = '''
import sys, time, ray
from ray.util.placement_group import placement_group
from ray.autoscaler.sdk import request_resources
ray.init(address=sys.argv[1], logging_level="ERROR")
@ray.remote
def wait(): time.sleep(3600)
refs = [wait.options(num_cpus=4).remote() for _ in range(3)]
refs.append(wait.options(num_cpus=1, resources={"GPU_like": 1}).remote())
pg = placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
request_resources(bundles=[{"CPU": 2}, {"CPU": 2}])
print("submitted", flush=True)
time.sleep(3600)
'''


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Ray head with 1 CPU, and a driver that submitted more than it can hold."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run([ray_command(), "start", "--head", f"--port={port}", "--num-cpus=1",
                    "--include-dashboard=false", "--disable-usage-stats"],
                   check=True, capture_output=True, timeout=120, env=env)
    script = tmp_path_factory.mktemp("driver") / "driver.py"
    script.write_text(DRIVER)
    driver = subprocess.Popen([sys.executable, str(script), address], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=env,
                              start_new_session=True)
    try:
        assert driver.stdout is not None and driver.stdout.readline().strip() == "submitted"
        yield address
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(30)
        subprocess.run([ray_command(), "stop", "--force"], capture_output=True, timeout=120)


def settled_load(address: str) -> ev.RayLoad:
    """The load once everything submitted shows (the GCS learns of it within a second)."""
    deadline = time.monotonic() + 30
    while True:
        load = ray_load.to_event(ray_load.read(address), cluster=("ray", "real"), at=0.0)
        if (sum(b.count for b in load.pending) == 4 and load.placement_groups
                and load.requests) or time.monotonic() > deadline:
            return load
        time.sleep(0.5)


def shapes(bundles: tuple[ev.Bundle, ...]) -> dict[tuple[tuple[str, float], ...], int]:
    return {b.shape: b.count for b in bundles}


def test_the_load_read_is_what_was_submitted(head: str) -> None:
    load = settled_load(head)
    assert shapes(load.pending) == {(("CPU", 4.0),): 3, (("CPU", 1.0), ("GPU_like", 1.0)): 1}
    assert shapes(load.requests) == {(("CPU", 2.0),): 2}
    assert [(pg.strategy, [dict(b) for b in pg.bundles]) for pg in load.placement_groups] == [
        ("STRICT_SPREAD", [{"CPU": 1.0}, {"CPU": 1.0}])]
    [node] = load.nodes
    assert node.total["CPU"] == 1.0 and node.ip


def test_idle_time_grows_on_a_node_with_nothing_running(head: str) -> None:
    first = settled_load(head).nodes[0].idle_seconds
    time.sleep(2.0)
    second = settled_load(head).nodes[0].idle_seconds
    assert second >= first + 1.5


def demand(bundles: tuple[ev.Bundle, ...]) -> scheduler.Demand:
    return scheduler.group([(dict(b.resources), b.count) for b in bundles])


def test_the_engines_plan_launches_what_rays_scheduler_launches(head: str) -> None:
    cluster = raycluster("real", maxWorkers=10, podTypes=[
        {"name": "head", "rayResources": {"CPU": 1}, "podConfig": POD},
        {"name": "cpu4", "minWorkers": 0, "maxWorkers": 5, "rayResources": {"CPU": 4},
         "podConfig": POD},
        {"name": "gpulike", "minWorkers": 0, "maxWorkers": 2,
         "rayResources": {"CPU": 1, "GPU_like": 1}, "podConfig": POD},
    ], headPodType="head", upscalingSpeed=100.0)
    world = World()
    world.apply_cluster(cluster)
    world.settle()
    key = ("ray", "real")
    head_pod = world.pods[world.heads(key)[0]]
    load = settled_load(head)
    node = load.nodes[0]
    real = dataclasses.replace(load, at=world.now,
                               nodes=(dataclasses.replace(node, ip=head_pod.ip),))
    before = len(world.actions)
    world.send(real)
    launched: dict[str, int] = {}
    for action in world.actions[before:]:
        if isinstance(action, act.CreatePod):
            launched[action.pod_type] = launched.get(action.pod_type, 0) + 1
    spec = world.state.clusters[key].spec
    assert spec is not None
    types = {name: scheduler.NodeType(resources=dict(t.resources), min_workers=t.min_workers,
                                      max_workers=t.max_workers)
             for name, t in spec.pod_types.items()}
    theirs, _ = ray_nodes_to_launch(
        types=types, head_type="head", max_workers=spec.max_workers,
        upscaling_speed=spec.upscaling_speed, nodes=[("head", dict(node.available))],
        head_index=0, launching={}, demand=demand(load.pending),
        placement_groups=[(pg.strategy, pg.bundles) for pg in load.placement_groups],
        requests=demand(load.requests))
    assert launched == theirs and launched  # Ray would launch workers, and so do we


def test_ray_operator_load_prints_the_report_as_json(head: str) -> None:
    settled_load(head)
    out = subprocess.run([sys.executable, "-m", "adapters", "load", "--address", head,
                          "--cluster", "ray/real"], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    report = json.loads(out)
    assert report["cluster"] == "ray/real" and report["type"] == "RayLoad"
    assert {b["count"] for b in report["pending"]} == {3, 1}


POD: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": "n-"},
                       "spec": {"containers": [{"name": "ray-node", "image": "rayproject/ray",
                                                "resources": {"requests": {"cpu": 1}}}]}}


def message(**fields: Any) -> Any:
    return pb.ClusterResourceState(**fields)


def test_conversion_reads_strategies_and_skips_dead_nodes_and_zeros() -> None:
    spread = pb.ResourceRequest(resources_bundle={"CPU": 1}, placement_constraints=[
        pb.PlacementConstraint(anti_affinity=pb.AntiAffinityConstraint(label_name="_PG_x"))])
    pack = pb.ResourceRequest(resources_bundle={"CPU": 2}, placement_constraints=[
        pb.PlacementConstraint(affinity=pb.AffinityConstraint(label_name="_PG_y"))])
    state = message(
        pending_resource_requests=[pb.ResourceRequestByCount(
            request=pb.ResourceRequest(resources_bundle={"CPU": 1, "GPU": 0}), count=2)],
        pending_gang_resource_requests=[
            pb.GangResourceRequest(requests=[spread, spread]),
            pb.GangResourceRequest(requests=[pack], details="y:STRICT_PACK|PENDING"),
            pb.GangResourceRequest(requests=[pb.ResourceRequest(resources_bundle={"CPU": 1})],
                                   details="z:SPREAD|PENDING")],
        node_states=[
            pb.NodeState(node_ip_address="10.0.0.1", status=pb.NodeStatus.IDLE,
                         total_resources={"CPU": 4}, available_resources={"CPU": 4},
                         idle_duration_ms=2500),
            pb.NodeState(node_ip_address="10.0.0.2", status=pb.NodeStatus.DEAD)])
    load = ray_load.to_event(ray_load.Reading(state=state), cluster=("ns", "c"), at=1.0)
    assert shapes(load.pending) == {(("CPU", 1.0),): 2}  # the zero GPU is no demand
    assert [pg.strategy for pg in load.placement_groups] == ["STRICT_SPREAD", "STRICT_PACK",
                                                             "SPREAD"]
    assert [(n.ip, n.idle_seconds) for n in load.nodes] == [("10.0.0.1", 2.5)]


def test_request_resources_from_the_kv_and_bad_values_named() -> None:
    reading = ray_load.Reading(state=message(), requested=ray_load.parse_requested(
        b'[{"CPU": 2}, {"CPU": 2}, {"GPU": 1}]'))
    load = ray_load.to_event(reading, cluster=("ns", "c"), at=0.0)
    assert shapes(load.requests) == {(("CPU", 2.0),): 2, (("GPU", 1.0),): 1}
    for raw in (b"{not json", b'{"CPU": 2}', b'[{"CPU": "two"}]'):
        with pytest.raises(ray_load.LoadError, match="request_resources"):
            ray_load.parse_requested(raw)


def test_an_unreachable_head_fails_at_once() -> None:
    started = time.monotonic()
    with pytest.raises(ray_load.LoadError, match="cannot reach"):
        ray_load.read(f"127.0.0.1:{free_port()}", timeout=2.0)
    assert time.monotonic() - started < 2.0
