"""The Ray resources of a pod type: detected from its first container, then overridden.

As the legacy operator did: CPU = min(request, limit) rounded up, memory = 70 % of
min(request, limit), GPU = the one limit whose name contains "gpu"; `rayResources` then
overrides them key by key (each a number >= 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from engine import checks, quantities
from engine.checks import Checker


def of_pod_type(
    check: Checker, pod_config: Mapping[str, Any], ray_resources: object, path: str
) -> dict[str, float]:
    detected = detect_resources(pod_config)
    overrides = check.mapping(ray_resources, f"{path}.rayResources", required=False)
    for key, value in overrides.items():
        where = checks.entry(f"{path}.rayResources", key)
        amount = check.number(value, where)
        if amount is not None and amount < 0:
            check.add(where, f"expected a number >= 0, got {checks.show(value)}")
        elif amount is not None:
            detected[str(key)] = value
    return detected


def detect_resources(pod_config: Mapping[str, Any]) -> dict[str, float]:
    """Ray resources auto-detected from the first container, as the legacy operator did."""
    try:
        container = pod_config["spec"]["containers"][0]
        res = container.get("resources") or {}
        requests = res.get("requests") or {}
        limits = res.get("limits") or {}
    except (KeyError, IndexError, TypeError, AttributeError):
        return {}
    out: dict[str, float] = {}
    cpu = _smallest(requests.get("cpu"), limits.get("cpu"))
    if cpu is not None:
        out["CPU"] = math.ceil(cpu)
    gpus = [k for k in limits if "gpu" in str(k).lower()]
    if len(gpus) == 1:
        gpu = _smallest(limits[gpus[0]], None)
        if gpu:
            out["GPU"] = int(gpu)
    memory = _smallest(requests.get("memory"), limits.get("memory"))
    if memory is not None:
        out["memory"] = int(memory * Fraction(7, 10))
    return out


def _smallest(a: object, b: object) -> Fraction | None:
    values = []
    for v in (a, b):
        if v is None:
            continue
        try:
            values.append(quantities.parse(v))
        except quantities.QuantityError:
            continue
    return min(values) if values else None
