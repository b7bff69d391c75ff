"""Builders for RayCluster objects and pod events used across test modules."""

from __future__ import annotations

import copy
from typing import Any


def pod_config(prefix: str) -> dict[str, Any]:
    """The example's pod template: one 1-CPU, 1 GiB container."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"generateName": prefix},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{
                "name": "ray-node",
                "image": "rayproject/ray:latest",
                "resources": {"requests": {"cpu": "1000m", "memory": "1Gi"},
                              "limits": {"cpu": "1000m", "memory": "1Gi"}},
            }],
        },
    }


EXAMPLE: dict[str, Any] = {
    "apiVersion": "cluster.ray.io/v1",
    "kind": "RayCluster",
    "metadata": {"name": "example-cluster", "namespace": "ray", "uid": "uid-1", "generation": 1},
    "spec": {
        "maxWorkers": 3,
        "upscalingSpeed": 1.0,
        "idleTimeoutMinutes": 5,
        "headPodType": "head-node",
        "podTypes": [
            {
                "name": "head-node",
                "podConfig": pod_config("ray-head-"),
            },
            {
                "name": "worker-node",
                "minWorkers": 2,
                "maxWorkers": 3,
                "rayResources": {"example-resource-a": 1, "example-resource-b": 1},
                "podConfig": pod_config("ray-worker-"),
            },
        ],
    },
}


def raycluster(name: str = "example-cluster", namespace: str = "ray", *, uid: str | None = None,
               generation: int = 1, **spec: Any) -> dict[str, Any]:
    """The documented example cluster, renamed, with top-level spec fields overridden."""
    obj = copy.deepcopy(EXAMPLE)
    obj["metadata"].update(name=name, namespace=namespace, uid=uid or f"uid-{namespace}-{name}",
                           generation=generation)
    obj["spec"].update(spec)
    return obj


def set_workers(obj: dict[str, Any], *, min_workers: int | None = None,
                max_workers: int | None = None, type_index: int = 1) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    pod_type = obj["spec"]["podTypes"][type_index]
    if min_workers is not None:
        pod_type["minWorkers"] = min_workers
    if max_workers is not None:
        pod_type["maxWorkers"] = max_workers
    obj["metadata"]["generation"] += 1
    return obj
