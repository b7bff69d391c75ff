"""The engine decides the same launches as Ray's own scheduler on the same input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import scheduler

pytest.importorskip("ray.autoscaler._private.resource_demand_scheduler")
from bench.ray_scheduler import ray_nodes_to_launch

SHAPES = [
    {"CPU": 1.0},
    {"CPU": 2.0},
    {"CPU": 4.0},
    {"CPU": 1.0, "GPU": 1.0},
    {"GPU": 1.0},
    {"CPU": 1.0, "memory": 2.0},
    {"memory": 4.0},
    {"custom": 1.0},
    {"CPU": 0.5},
    {"CPU": 1.0, "custom": 1.0},
    {"CPU": 0.0},
]

type_resources = st.fixed_dictionaries(
    {"CPU": st.sampled_from([1.0, 2.0, 4.0, 8.0])},
    optional={
        "GPU": st.sampled_from([0.0, 1.0, 2.0]),
        "memory": st.sampled_from([2.0, 4.0, 8.0]),
        "custom": st.sampled_from([1.0, 2.0]),
    },
)


@st.composite
def cases(draw: st.DrawFn) -> dict[str, object]:
    names = draw(st.lists(st.sampled_from(["head", "a", "b", "gpu", "z"]), min_size=1,
                          max_size=4, unique=True))
    types = {}
    for name in names:
        low = draw(st.integers(0, 3))
        high = draw(st.integers(low, 12))
        types[name] = scheduler.NodeType(
            resources=draw(type_resources), min_workers=low, max_workers=high
        )
    head_type = names[0]
    max_workers = draw(st.integers(0, 20))
    nodes = [(head_type, None)]
    for _ in range(draw(st.integers(0, 8))):
        pod_type = draw(st.sampled_from(names))
        total = types[pod_type].resources
        connected = draw(st.booleans())
        available = None
        if connected:
            available = {k: draw(st.sampled_from([0.0, v / 2, v])) for k, v in total.items()}
        nodes.append((pod_type, available))
    if draw(st.booleans()):
        nodes[0] = (head_type, dict(types[head_type].resources))
    bundles = draw(st.lists(st.tuples(st.sampled_from(SHAPES), st.integers(1, 40)), max_size=5))
    requests = draw(st.lists(st.tuples(st.sampled_from(SHAPES), st.integers(1, 6)), max_size=3))
    pgs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"]),
                st.lists(st.sampled_from(SHAPES[:8]), min_size=1, max_size=4),
            ),
            max_size=2,
        )
    )
    launching = {n: draw(st.integers(0, 3)) for n in names if draw(st.booleans())}
    return {
        "types": types,
        "head_type": head_type,
        "max_workers": max_workers,
        "upscaling_speed": draw(st.sampled_from([0.5, 1.0, 2.0, 10.0])),
        "nodes": nodes,
        "launching": launching,
        "demand": scheduler.group(bundles),
        "placement_groups": pgs,
        "requests": scheduler.group(requests),
    }


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_launches_match_ray(case: dict[str, object]) -> None:
    ours = scheduler.nodes_to_launch(**case)  # type: ignore[arg-type]
    theirs, unfulfilled = ray_nodes_to_launch(head_index=0, **case)  # type: ignore[arg-type]
    assert dict(ours.to_launch) == theirs
    assert scheduler.expand(ours.unfulfilled) == unfulfilled


def test_ten_thousand_bundles_match_ray_on_types_that_fit() -> None:
    types = {
        "head": scheduler.NodeType(resources={"CPU": 4.0}, min_workers=0, max_workers=0),
        "small": scheduler.NodeType(resources={"CPU": 2.0, "memory": 8.0}, min_workers=0,
                                    max_workers=500),
        "big": scheduler.NodeType(resources={"CPU": 16.0, "GPU": 1.0}, min_workers=0,
                                  max_workers=50),
    }
    case = {
        "types": types,
        "head_type": "head",
        "max_workers": 600,
        "upscaling_speed": 1000.0,
        "nodes": [("head", {"CPU": 4.0})],
        "launching": {},
        "demand": scheduler.group([({"CPU": 1.0}, 300), ({"CPU": 1.0, "GPU": 1.0}, 20),
                                   ({"memory": 2.0}, 100)]),
    }
    ours = scheduler.nodes_to_launch(**case)  # type: ignore[arg-type]
    theirs, unfulfilled = ray_nodes_to_launch(head_index=0, **case)  # type: ignore[arg-type]
    assert dict(ours.to_launch) == theirs
    assert scheduler.expand(ours.unfulfilled) == unfulfilled


@st.composite
def competing_types(draw: st.DrawFn) -> dict[str, object]:
    """Several worker types with the same resource keys, so the utilization score decides."""
    types = {"head": scheduler.NodeType(resources={"CPU": 1.0}, min_workers=0, max_workers=0)}
    for name in ("w1", "w2", "w3"):
        types[name] = scheduler.NodeType(
            resources={
                "CPU": draw(st.sampled_from([1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 16.0])),
                "memory": draw(st.sampled_from([1.0, 2.0, 4.0, 8.0, 12.0, 32.0])),
            },
            min_workers=0,
            max_workers=draw(st.integers(1, 10)),
        )
    shapes = st.fixed_dictionaries(
        {"CPU": st.sampled_from([1.0, 2.0, 3.0])},
        optional={"memory": st.sampled_from([1.0, 2.0, 3.0, 5.0])},
    )
    bundles = draw(st.lists(st.tuples(shapes, st.integers(1, 12)), min_size=1, max_size=4))
    return {
        "types": types,
        "head_type": "head",
        "max_workers": 30,
        "upscaling_speed": 100.0,
        "nodes": [("head", {"CPU": 0.0})],
        "launching": {},
        "demand": scheduler.group(bundles),
    }


@settings(max_examples=300, deadline=None)
@given(case=competing_types())
def test_type_choice_by_utilization_matches_ray(case: dict[str, object]) -> None:
    ours = scheduler.nodes_to_launch(**case)  # type: ignore[arg-type]
    theirs, unfulfilled = ray_nodes_to_launch(head_index=0, **case)  # type: ignore[arg-type]
    assert dict(ours.to_launch) == theirs
    assert scheduler.expand(ours.unfulfilled) == unfulfilled
