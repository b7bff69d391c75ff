"""Reading and validating the RayCluster resource."""

from __future__ import annotations

import copy

import pytest

from engine import resources as ray_resources
from engine import spec
from engine.errors import InvalidSpec
from tests.builders import EXAMPLE, raycluster


def problems(obj: dict[str, object]) -> list[str]:
    with pytest.raises(InvalidSpec) as info:
        spec.from_raycluster(obj)
    return [str(p) for p in info.value.problems]


def test_the_documented_example_is_valid() -> None:
    s = spec.from_raycluster(EXAMPLE)
    assert s.max_workers == 3 and s.head_pod_type == "head-node"
    worker = s.pod_types["worker-node"]
    assert (worker.min_workers, worker.max_workers) == (2, 3)
    assert worker.resources == {"CPU": 1, "memory": int(0.7 * 2**30),
                                "example-resource-a": 1, "example-resource-b": 1}


def test_every_problem_is_listed_with_its_field_path() -> None:
    obj = raycluster(upscalingSpeed=0, idleTimeoutMinutes=-1, headPodType="nope")
    obj["spec"]["podTypes"][1].update(minWorkers=5, maxWorkers=3)
    found = problems(obj)
    assert "spec.upscalingSpeed: expected a number > 0, got 0" in found
    assert "spec.idleTimeoutMinutes: expected a number >= 0, got -1" in found
    assert "spec.podTypes[1].minWorkers: 5 > maxWorkers 3" in found
    assert any(p.startswith("spec.headPodType: 'nope' names no podType") for p in found)
    assert "spec.maxWorkers: sum of minWorkers 5 > maxWorkers 3" in found


def test_omitted_max_workers_is_the_sum_of_per_type_maxima() -> None:
    obj = raycluster()
    del obj["spec"]["maxWorkers"]
    extra = copy.deepcopy(obj["spec"]["podTypes"][1])
    extra.update(name="worker-2", maxWorkers=4, minWorkers=0)
    obj["spec"]["podTypes"].append(extra)
    assert spec.from_raycluster(obj).max_workers == 7


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("maxWorkers", "3", "spec.maxWorkers: expected an integer, got '3'"),
        ("maxWorkers", -1, "spec.maxWorkers: expected an integer >= 0, got -1"),
        ("upscalingSpeed", True, "spec.upscalingSpeed: expected a number, got true"),
        ("headSetupCommands", ["x"], "spec.headSetupCommands: unknown field"),
    ],
)
def test_wrong_types_and_unknown_fields_are_named(field: str, value: object,
                                                  expected: str) -> None:
    found = problems(raycluster(**{field: value}))
    assert any(p.startswith(expected) for p in found), found


def test_quantities_must_parse() -> None:
    obj = raycluster()
    container = obj["spec"]["podTypes"][1]["podConfig"]["spec"]["containers"][0]
    container["resources"]["requests"]["cpu"] = "lots"
    found = problems(obj)
    assert found[0].startswith(
        "spec.podTypes[1].podConfig.spec.containers[0].resources.requests[cpu]: expected a quantity"
    )


def test_pod_config_needs_containers() -> None:
    obj = raycluster()
    obj["spec"]["podTypes"][0]["podConfig"]["spec"]["containers"] = []
    assert problems(obj) == [
        "spec.podTypes[0].podConfig.spec.containers: expected a non-empty list, got []"
    ]


@pytest.mark.parametrize("name", ["Example", "a_b", "-a", "x" * 60])
def test_cluster_names_are_dns_labels(name: str) -> None:
    assert problems(raycluster(name))[0].startswith("metadata.name:")


def test_custom_redis_password_is_rejected() -> None:
    obj = raycluster(headStartRayCommands=["ray start --head --redis-password=x"])
    assert problems(obj)[0].startswith("spec.headStartRayCommands[0]: the Ray Kubernetes")


@pytest.mark.parametrize(
    ("commands", "port"),
    [(["ray start --head --port 1234567"], 1234567), (["ray start --port=1234567"], 1234567),
     (["ray start --head"], 6379)],
)
def test_head_port_is_inferred_from_start_commands(commands: list[str], port: int) -> None:
    assert spec.infer_head_port(commands) == port


def test_head_service_ports_merge_by_name() -> None:
    obj = raycluster(headServicePorts=[
        {"name": "test-port", "port": 123, "targetPort": 456},
        {"name": "client", "port": 555, "targetPort": 666},
    ])
    ports = [(p.name, p.port, p.target_port) for p in spec.from_raycluster(obj).head_service_ports]
    assert ports[:4] == [("client", 555, 666), ("dashboard", 8265, 8265),
                         ("ray-serve", 8000, 8000), ("test-port", 123, 456)]


def test_resource_detection_rounds_cpu_up_and_takes_the_gpu_limit() -> None:
    config = {"spec": {"containers": [{"name": "c", "image": "i", "resources": {
        "requests": {"cpu": "500m", "memory": "1G"},
        "limits": {"cpu": "2", "memory": "2G", "nvidia.com/gpu": 2}}}]}}
    assert ray_resources.detect_resources(config) == {"CPU": 1, "GPU": 2, "memory": 700_000_000}


def test_ray_resources_edit_keeps_the_launch_hash() -> None:
    a = spec.from_raycluster(raycluster())
    obj = raycluster()
    obj["spec"]["podTypes"][1]["rayResources"] = {"CPU": 0}
    b = spec.from_raycluster(obj)
    assert a.pod_types["worker-node"].launch_hash == b.pod_types["worker-node"].launch_hash
    assert b.pod_types["worker-node"].resources["CPU"] == 0


def test_head_type_without_max_workers_gets_no_workers() -> None:
    s = spec.from_raycluster(raycluster())
    assert (s.head.min_workers, s.head.max_workers) == (0, 0)
    assert s.pod_types["worker-node"].max_workers == 3
