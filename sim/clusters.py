"""Small RayCluster objects for tests, benchmarks and generated timelines."""

from __future__ import annotations

from typing import Any


def cluster_object(namespace: str, name: str, low: int, high: int, *,
                   idle_minutes: float = 1.0, upscaling_speed: float | None = None
                   ) -> dict[str, Any]:
    """A RayCluster with a CPU-less head type "head" and one 1-CPU worker type "worker"
    between `low` and `high` workers (the simulator's tests and the benchmarks use it)."""
    def pod_config(prefix: str) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"generateName": prefix},
                "spec": {"restartPolicy": "Never", "containers": [{
                    "name": "ray-node", "image": "rayproject/ray:2.60.0",
                    "resources": {"requests": {"cpu": 1, "memory": "1Gi"},
                                  "limits": {"cpu": 1, "memory": "1Gi"}}}]}}

    spec: dict[str, Any] = {
        "maxWorkers": high, "idleTimeoutMinutes": idle_minutes, "headPodType": "head",
        "podTypes": [
            {"name": "head", "rayResources": {"CPU": 0}, "podConfig": pod_config("head-")},
            {"name": "worker", "minWorkers": low, "maxWorkers": high,
             "podConfig": pod_config("worker-")},
        ],
    }
    if upscaling_speed is not None:
        spec["upscalingSpeed"] = upscaling_speed
    return {"apiVersion": "cluster.ray.io/v1", "kind": "RayCluster",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}
