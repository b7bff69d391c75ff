"""The Kubernetes kinds the operator reads and writes: one table for every API client.

resource (plural) -> (API group, version, kind, namespaced). The live adapter builds its
REST paths from it and the simulated API serves exactly these kinds.
"""

from __future__ import annotations

KINDS: dict[str, tuple[str, str, str, bool]] = {
    "rayclusters": ("cluster.ray.io", "v1", "RayCluster", True),
    "pods": ("", "v1", "Pod", True),
    "services": ("", "v1", "Service", True),
    "events": ("", "v1", "Event", True),
    "leases": ("coordination.k8s.io", "v1", "Lease", True),
    "namespaces": ("", "v1", "Namespace", False),
}


def api_version(resource: str) -> str:
    group, version, _, _ = KINDS[resource]
    return f"{group}/{version}" if group else version
