"""The simulated kubelet and scheduler: pods bound to nodes with room, started, stopped.

kwok-style stages: a new pod is bound to a node with room (or stays Pending, marked
Unschedulable, until room frees up), goes Running after the scenario's `podStartup.delay`
plus up to `jitter`, with an IP and container statuses as a real kubelet reports them, then
joins Ray (`sim.raylink`); a deleted pod stops after a short grace and disappears.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from attrs import define

from engine import quantities
from sim import raylink

if TYPE_CHECKING:
    from sim.world import World

RAY_JOIN_DELAY = 1.0
TERMINATION_GRACE = 1.0


@define
class Capacity:
    """What is left of one simulated node."""

    name: str
    cpu: float
    memory: float
    gpu: float


def kubelet(world: World, kind: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    key = (meta["namespace"], meta["name"])
    if kind == "ADDED":
        world.at(world.now, lambda: bind(world, key))
    elif kind == "MODIFIED" and meta.get("deletionTimestamp") and key not in world.stopping:
        world.stopping.add(key)
        raylink.ray_leave(world, obj)
        world.at(world.now + TERMINATION_GRACE, lambda: stop(world, key))
    elif kind == "DELETED":
        world.stopping.discard(key)
        raylink.ray_leave(world, obj)
        unbind(world, key)


def pod_at(world: World, key: tuple[str, str]) -> dict[str, Any] | None:
    return world.api.objects["pods"].get(key)


def bind(world: World, key: tuple[str, str]) -> None:
    pod = pod_at(world, key)
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return
    need = requests(world, pod)
    node = fit(world, need)
    if node is None:
        if key not in world.unschedulable:
            world.unschedulable.append(key)
            world.api.patch_status("pods", key[0], key[1], {"conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": f"0/{len(world.capacity or [])} nodes are available: "
                           "insufficient resources."}]})
        return
    world.bound[key] = (node, need)
    delay = world.scenario.startup_delay + world.scenario.startup_jitter * world.rng.random()
    world.api.patch("pods", key[0], key[1], {"spec": {"nodeName": node_name(world, node)}})
    world.at(world.now + delay, lambda: start(world, key))


def requests(world: World, pod: dict[str, Any]) -> dict[str, float]:
    """What a pod asks the scheduler for. Pods of one template share their spec object,
    so the answer is kept per spec (with the spec itworld, so its id cannot be reused)."""
    spec = pod.get("spec") or {}
    found = world.requests_memo.get(id(spec))
    if found is not None and found[0] is spec:
        return found[1]
    need = _parse_requests(pod)
    if len(world.requests_memo) > 10_000:
        world.requests_memo.clear()
    world.requests_memo[id(spec)] = (spec, need)
    return need


def node_name(world: World, index: int) -> str:
    return world.capacity[index].name if world.capacity else f"sim-node-{index}"


def fit(world: World, need: dict[str, float]) -> int | None:
    if world.capacity is None:
        return 0
    for i, node in enumerate(world.capacity):
        if (node.cpu >= need.get("cpu", 0) and node.memory >= need.get("memory", 0)
                and node.gpu >= need.get("gpu", 0)):
            node.cpu -= need.get("cpu", 0)
            node.memory -= need.get("memory", 0)
            node.gpu -= need.get("gpu", 0)
            return i
    return None


def unbind(world: World, key: tuple[str, str]) -> None:
    if key in world.unschedulable:
        world.unschedulable.remove(key)
    bound = world.bound.pop(key, None)
    if bound is None or world.capacity is None:
        return
    index, need = bound
    node = world.capacity[index]
    node.cpu += need.get("cpu", 0)
    node.memory += need.get("memory", 0)
    node.gpu += need.get("gpu", 0)
    waiting, world.unschedulable = world.unschedulable, []
    for other in waiting:
        bind(world, other)


def start(world: World, key: tuple[str, str]) -> None:
    pod = pod_at(world, key)
    if pod is None or pod["metadata"].get("deletionTimestamp"):
        return
    world.ips += 1
    ip = f"10.{(world.ips >> 16) & 255}.{(world.ips >> 8) & 255}.{world.ips & 255}"
    started = pod["metadata"]["creationTimestamp"]
    containers = [{"name": c.get("name", ""), "image": str(c.get("image", "")),
                   "imageID": "", "ready": True, "restartCount": 0,
                   "state": {"running": {"startedAt": started}}}
                  for c in (pod.get("spec") or {}).get("containers") or ()
                  if isinstance(c, dict)]
    world.api.patch_status("pods", key[0], key[1], {
        "phase": "Running", "podIP": ip, "startTime": started,
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": containers})
    world.at(world.now + RAY_JOIN_DELAY, lambda: raylink.ray_join(world, key))


def stop(world: World, key: tuple[str, str]) -> None:
    pod = pod_at(world, key)
    if pod is not None:
        world.api.remove("pods", pod)


def _parse_requests(pod: dict[str, Any]) -> dict[str, float]:
    need: dict[str, float] = {}
    for c in (pod.get("spec") or {}).get("containers") or []:
        res = (c.get("resources") or {}).get("requests") or {}
        for key, out in (("cpu", "cpu"), ("memory", "memory"), ("nvidia.com/gpu", "gpu")):
            if key in res:
                with contextlib.suppress(quantities.QuantityError):
                    need[out] = need.get(out, 0.0) + float(quantities.parse(res[key]))
    return need
