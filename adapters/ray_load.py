"""Reading a Ray cluster's load from its head, as the engine's `RayLoad` event.

Ray's own autoscaler (v2) reads one message from the head's GCS every few seconds:
`ClusterResourceState` (`ray.autoscaler.v2.sdk.get_cluster_resource_state`): the pending
resource requests grouped by shape, the gang (placement group) requests, the
`request_resources` constraints, and every node with its resources and idle time. This module
turns that message into a `RayLoad` (`to_event`, pure over the message), and reads it from an
address (`read`), with `ray` imported only when a read is made: `ray` is an optional extra,
and without it the operator scales between minWorkers and maxWorkers only. `drain` asks a
head to drain one node before its pod is deleted, as Ray's autoscaler does.
"""

from __future__ import annotations

import importlib.util
import json
import socket
from collections.abc import Iterable, Mapping
from typing import Any

from attrs import frozen

from engine import events as ev
from engine import raystatus

STRATEGIES = ("STRICT_SPREAD", "STRICT_PACK", "SPREAD", "PACK")
DEAD = 2  # autoscaler_pb2.NodeStatus.DEAD
REQUEST_KEY = b"autoscaler_resource_request"
"""Where `ray.autoscaler.sdk.request_resources` leaves its bundles (GCS internal KV, JSON)
when Ray's own autoscaler v2 is not running: the case under this operator."""


@frozen
class Reading:
    """What one read of a head returns: the GCS's resource state and the bundles asked for
    with `request_resources` (the KV form; v2's constraints are in the state)."""

    state: Any
    requested: tuple[Mapping[str, float], ...] = ()


class LoadError(Exception):
    """The head could not be read: unreachable, timed out, or an answer we cannot use."""


def available() -> bool:
    """Whether the `ray` package (the `ray` extra) is installed."""
    return importlib.util.find_spec("ray") is not None


def _resources(entries: Mapping[str, float]) -> dict[str, float]:
    return {str(k): float(v) for k, v in entries.items() if float(v) != 0.0}


def _bundles(by_count: Iterable[Any]) -> tuple[ev.Bundle, ...]:
    return tuple(ev.Bundle(resources=_resources(r.request.resources_bundle), count=int(r.count))
                 for r in by_count if r.count > 0)


def _strategy(gang: Any) -> str:
    """The placement group's strategy: named in `details` ("<id>:<STRATEGY>|<state>"), else
    implied by its constraints (anti-affinity between bundles is STRICT_SPREAD, affinity is
    STRICT_PACK), else PACK, Ray's default."""
    details = str(gang.details)
    for name in STRATEGIES:  # longest first: "STRICT_PACK" before "PACK"
        if name in details:
            return name
    constraints = [c for r in gang.requests for c in r.placement_constraints]
    if any(c.HasField("anti_affinity") for c in constraints):
        return "STRICT_SPREAD"
    if any(c.HasField("affinity") for c in constraints):
        return "STRICT_PACK"
    return "PACK"


def _grouped(bundles: Iterable[Mapping[str, float]]) -> tuple[ev.Bundle, ...]:
    counts: dict[tuple[tuple[str, float], ...], int] = {}
    for bundle in bundles:
        shape = tuple(sorted(_resources(bundle).items()))
        counts[shape] = counts.get(shape, 0) + 1
    return tuple(ev.Bundle(resources=dict(shape), count=n) for shape, n in counts.items())


def to_event(reading: Reading, *, cluster: ev.ClusterKey, at: float) -> ev.RayLoad:
    """The engine's load report for `cluster` from one reading of its head."""
    state = reading.state
    constraints = [b for c in state.cluster_resource_constraints for b in _bundles(
        c.resource_requests)] or list(_grouped(reading.requested))
    gangs = tuple(ev.PlacementGroup(strategy=_strategy(g), bundles=tuple(
        _resources(r.resources_bundle) for r in g.requests)) for g in
        state.pending_gang_resource_requests if len(g.requests) > 0)
    nodes = tuple(ev.RayNode(ip=str(n.node_ip_address), total=_resources(n.total_resources),
                             available=_resources(n.available_resources),
                             idle_seconds=max(0.0, n.idle_duration_ms / 1000.0))
                  for n in state.node_states if n.status != DEAD and n.node_ip_address)
    return ev.RayLoad(cluster=cluster, at=at, pending=_bundles(state.pending_resource_requests),
                      requests=tuple(constraints), placement_groups=gangs, nodes=nodes)


def parse_requested(raw: bytes | None) -> tuple[Mapping[str, float], ...]:
    """The bundles of `request_resources` from their KV value (a JSON list of bundles)."""
    if not raw:
        return ()
    try:
        found = json.loads(raw)
    except ValueError as exc:
        raise LoadError(f"request_resources: not JSON ({exc})") from exc
    if not isinstance(found, list) or not all(
            isinstance(b, dict) and all(isinstance(v, int | float) for v in b.values())
            for b in found):
        raise LoadError(f"request_resources: expected a list of bundles, got {raw[:200]!r}")
    return tuple(found)


_CLIENTS: dict[str, Any] = {}


def _client(address: str, timeout: float) -> Any:
    """The GCS client of the head at `address`, kept across reads. A port that does not
    answer fails at once (Ray's own client would wait 40 s for it)."""
    if not available():
        raise LoadError("the ray package is not installed (pip install 'ray-operator[ray]')")
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise LoadError(f"cannot reach the Ray head at {address}: {exc}") from exc
    from ray._raylet import GcsClient  # type: ignore[attr-defined]

    client = _CLIENTS.get(address)
    if client is None:
        try:
            client = _CLIENTS[address] = GcsClient(address=address)
        except Exception as exc:
            raise LoadError(f"cannot reach the Ray head at {address}: "
                            f"{type(exc).__name__}: {exc}") from exc
    return client


def read(address: str, *, timeout: float = 5.0) -> Reading:
    """One reading of the Ray head at `address` ("host:port" of its GCS)."""
    client = _client(address, timeout)
    from ray.autoscaler.v2 import sdk

    try:
        state = sdk.get_cluster_resource_state(client)
        raw = client.internal_kv_get(REQUEST_KEY, None, timeout=timeout)
    except Exception as exc:  # ray raises its own RpcError, RuntimeError, ValueError, ...
        _CLIENTS.pop(address, None)
        raise LoadError(f"cannot read the Ray head at {address}: "
                        f"{type(exc).__name__}: {exc}") from exc
    return Reading(state=state, requested=parse_requested(raw))


@frozen
class DrainAnswer:
    """What a head answered to a drain: accepted or not, and Ray's words."""

    accepted: bool
    reason: str = ""


IDLE_TERMINATION = 1  # autoscaler_pb2.DrainNodeReason.DRAIN_NODE_REASON_IDLE_TERMINATION


def drain(address: str, ip: str, *, message: str, deadline: float,
          timeout: float = 5.0) -> DrainAnswer:
    """Ask the head at `address` to drain its node at `ip`, as Ray's autoscaler asks before
    it terminates an idle node (`GcsClient.drain_node`, reason IDLE_TERMINATION): Ray
    refuses while work runs there and, once it accepts, schedules nothing new on it.
    `deadline` (seconds since the epoch) is when the pod will be gone at the latest. A node
    Ray does not list (not joined, or gone) has nothing to drain: accepted."""
    client = _client(address, timeout)
    from ray.autoscaler.v2 import sdk

    try:
        state = sdk.get_cluster_resource_state(client)
        node = next((n for n in state.node_states if n.status != DEAD
                     and str(n.node_ip_address) == ip), None)
        if node is None:
            return DrainAnswer(accepted=True, reason=f"no Ray node at {ip}")
        accepted, refusal = client.drain_node(
            node.node_id.hex(), IDLE_TERMINATION, message, int(deadline * 1000))
    except Exception as exc:  # ray raises its own RpcError, RuntimeError, ValueError, ...
        _CLIENTS.pop(address, None)
        raise LoadError(f"cannot drain {ip} through the Ray head at {address}: "
                        f"{type(exc).__name__}: {exc}") from exc
    return DrainAnswer(accepted=bool(accepted), reason=str(refusal or ""))


def publish(address: str, status: bytes, notes: bytes, *, timeout: float = 5.0) -> None:
    """Write the operator's view where `ray status` and the dashboard read Ray's autoscaler
    status (`engine.raystatus`): the status JSON and the lines printed after it."""
    client = _client(address, timeout)
    try:
        client.internal_kv_put(raystatus.STATUS_KEY, status, True, None, timeout=timeout)
        client.internal_kv_put(raystatus.ERROR_KEY, notes, True, None, timeout=timeout)
    except Exception as exc:  # ray raises its own RpcError, RuntimeError, ...
        _CLIENTS.pop(address, None)
        raise LoadError(f"cannot write the status to the Ray head at {address}: "
                        f"{type(exc).__name__}: {exc}") from exc
