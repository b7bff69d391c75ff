"""What `ray status` shows on a head the operator manages: the operator's view, in Ray's words.

Ray's own autoscaler (v1, the one a head started without `RAY_enable_autoscaler_v2` runs)
writes its status as JSON into the GCS key-value store, under `__autoscaling_status`, every
pass; `ray status` and the dashboard read it back, and append `__autoscaling_error` as is.
A head under this operator runs no autoscaler (`--no-monitor`), so without this module
`ray status` prints "No cluster status." `report(cs, now)` builds the same JSON from what
the engine knows (the last load report, the pods, the creates in flight, the pods that did
not start, the demand no launch covers), and `notes(cs)` the lines for the error key: the
infeasible and held-back demand the status conditions show. Pure: the live adapter writes
them to each head it reads (`adapters.ray_load.publish`).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from engine import events as ev
from engine.records import ClusterState

STATUS_KEY = b"__autoscaling_status"
ERROR_KEY = b"__autoscaling_error"


def report(cs: ClusterState, now: float) -> dict[str, Any]:
    """The `__autoscaling_status` value (Ray's `LoadMetricsSummary` and `AutoscalerSummary`
    as `dataclasses.asdict` gives them, with the time)."""
    active: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    usage: dict[str, list[float]] = {}
    by_node: dict[str, dict[str, list[float]]] = {}
    types: dict[str, str] = {}
    idle_ms: dict[str, int] = {}
    totals: Counter[tuple[tuple[str, float], ...]] = Counter()
    for ip, (node, _) in sorted(cs.ray_nodes.items()):
        pod = cs.live_ips.get(ip)
        pod_type = pod.pod_type if pod is not None else "unknown"
        (idle if ip in cs.idle_since else active)[pod_type] += 1
        types[ip] = pod_type
        if ip in cs.idle_since:
            idle_ms[ip] = int(max(0.0, now - cs.idle_since[ip]) * 1000)
        free = cs.node_free.get(ip, node.available)
        mine = by_node[ip] = {}
        for name, total in node.total.items():
            used = total - free.get(name, 0.0)
            mine[name] = [used, total]
            both = usage.setdefault(name, [0.0, 0.0])
            both[0] += used
            both[1] += total
        totals[tuple(sorted(node.total.items()))] += 1
    load = cs.load
    pending = [[dict(b.resources), b.count] for b in load.pending] if load else []
    requests = [[dict(b.resources), b.count] for b in load.requests] if load else []
    groups: Counter[str] = Counter()
    shapes: dict[str, dict[str, Any]] = {}
    for g in load.placement_groups if load else ():
        counted = Counter(tuple(sorted(b.items())) for b in g.bundles)
        pg = {"bundles": [[dict(k), n] for k, n in counted.items()], "strategy": g.strategy}
        key = repr(pg)
        groups[key] += 1
        shapes[key] = pg
    head = cs.pods.get(cs.head) if cs.head else None
    return {
        "time": now,
        "gcs_request_time": 0.0,
        "non_terminated_nodes_time": 0.0,
        "autoscaler_report": {
            "active_nodes": dict(sorted(active.items())),
            "idle_nodes": dict(sorted(idle.items())),
            "pending_nodes": _pending_nodes(cs),
            "pending_launches": {t: n for t, n in sorted(cs.inflight.items()) if n > 0},
            "failed_nodes": [[name, pod_type] for name, pod_type in cs.failed],
            "node_availability_summary": {"node_availabilities": {}},
            "node_activities": None,
            "pending_resources": {},
            "node_type_mapping": types,
            "legacy": False,
        },
        "load_metrics_report": {
            "usage": usage,
            "resource_demand": pending,
            "pg_demand": [[shapes[k], n] for k, n in groups.items()],
            "request_demand": requests,
            "node_types": [[dict(k), n] for k, n in totals.items()],
            "head_ip": head.ip if head is not None and head.ip else None,
            "usage_by_node": by_node,
            "node_type_mapping": types,
            "idle_time_map": idle_ms,
        },
    }


def _pending_nodes(cs: ClusterState) -> list[list[str]]:
    """Pods that exist but whose Ray has not joined: [ip or pod name, type, status]."""
    out = []
    for pod in cs.pods.values():
        if pod.role != ev.WORKER or not pod.live or pod.name in cs.deleting:
            continue
        if pod.ip and pod.ip in cs.joined:
            continue
        status = pod.waiting or ("waiting for Ray to start" if pod.phase == ev.RUNNING
                                 else f"pod {pod.phase}")
        out.append([pod.ip or pod.name, pod.pod_type, status])
    return sorted(out)


def notes(cs: ClusterState, now: float) -> str:
    """The `__autoscaling_error` value: what `ray status` prints after the status (the
    demand no launch covers, as the status conditions say; "" when nothing)."""
    sent = cs.status_sent
    note = sent.demand if sent is not None else None
    if note is None:
        return ""
    lines = []
    if note.infeasible:
        lines.append(f"Warning: infeasible demand: {note.infeasible}.")
    if note.held:
        lines.append(f"Held back: {note.held}.")
    for pod_type in sorted(t for t, until in cs.unavailable.items() if now < until):
        lines.append(f"Pod type {pod_type} is unavailable for a while: its pods did not "
                     "start (see the RayCluster's Events).")
    return "\n".join(lines)
