"""Ray's own ResourceDemandScheduler, driven with the same input as `engine.scheduler`.

The oracle of the differential tests and the peer of the side-by-side benchmark (P1): a
minimal node provider (tags and IPs only) so Ray's scheduler runs without a cloud, and the
engine's inputs converted to Ray's. Needs the `ray` package.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from engine import scheduler

logging.getLogger("ray.autoscaler").setLevel(logging.CRITICAL)


class _Provider:
    def __init__(self, tags: dict[str, dict[str, str]], ips: dict[str, str]) -> None:
        self._tags = tags
        self._ips = ips

    def node_tags(self, node_id: str) -> dict[str, str]:
        return self._tags[node_id]

    def internal_ip(self, node_id: str) -> str:
        return self._ips[node_id]


def _placement_group(strategy: str, bundles: Sequence[Mapping[str, float]]) -> Any:
    common = _ray("ray.core.generated.common_pb2")
    gcs = _ray("ray.core.generated.gcs_pb2")
    pg = gcs.PlacementGroupTableData(strategy=getattr(common.PlacementStrategy, strategy))
    for b in bundles:
        pg.bundles.append(common.Bundle(unit_resources=dict(b)))
    return pg


def _ray(module: str) -> Any:
    """A module of the `ray` package, untyped (its partial stubs disagree with its use)."""
    return importlib.import_module(module)


def ray_nodes_to_launch(
    *,
    types: Mapping[str, scheduler.NodeType],
    head_type: str,
    max_workers: int,
    upscaling_speed: float,
    nodes: Sequence[scheduler.Node],
    head_index: int,
    launching: Mapping[str, int],
    demand: scheduler.Demand,
    placement_groups: Sequence[tuple[str, Sequence[Mapping[str, float]]]] = (),
    requests: scheduler.Demand | None = None,
) -> tuple[dict[str, int], list[dict[str, float]]]:
    tracker = _ray("ray.autoscaler._private.node_provider_availability_tracker")
    ResourceDemandScheduler = _ray(
        "ray.autoscaler._private.resource_demand_scheduler").ResourceDemandScheduler

    tags: dict[str, dict[str, str]] = {}
    ips: dict[str, str] = {}
    unused: dict[str, dict[str, float]] = {}
    for i, (pod_type, available) in enumerate(nodes):
        node_id = f"n{i}"
        kind = "head" if i == head_index else "worker"
        tags[node_id] = {"ray-node-kind": kind, "ray-user-node-type": pod_type}
        ips[node_id] = f"10.0.0.{i}"
        if available is not None:
            unused[ips[node_id]] = dict(available)
    config = {
        name: {
            "resources": dict(t.resources),
            "min_workers": t.min_workers,
            "max_workers": t.max_workers,
            "node_config": {},
        }
        for name, t in types.items()
    }
    ray_scheduler = ResourceDemandScheduler(
        _Provider(tags, ips), config, max_workers, head_type, upscaling_speed
    )
    to_launch, unfulfilled = ray_scheduler.get_nodes_to_launch(
        list(tags),
        dict(launching),
        scheduler.expand(demand),
        unused,
        [_placement_group(s, b) for s, b in placement_groups],
        {},
        scheduler.expand(requests or []),
        tracker.NodeAvailabilitySummary(node_availabilities={}),
    )
    return dict(to_launch), [dict(u) for u in unfulfilled]
