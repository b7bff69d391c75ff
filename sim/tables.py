"""The Tables `kubectl get` asks for, with the columns a real API server gives each kind.

kubectl prints what the server sends (`Accept: ...;as=Table`), so a simulated API that
answered `NAME AGE` for every kind would show users less than their cluster does. The
columns here are the real server's printers for pods (READY, STATUS, RESTARTS; IP and NODE
with `-o wide`), events (LAST SEEN, TYPE, REASON, OBJECT, MESSAGE), services and
namespaces, and for RayClusters the CRD's own `additionalPrinterColumns` (`sim/crd.yaml`),
as a real server reads them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import yaml

Obj = dict[str, Any]
Column = tuple[str, str, int, Callable[[Obj, float], Any]]  # name, type, priority, cell


def age(now: float, created: str) -> str:
    """kubectl's AGE: the largest unit or two (`45s`, `5m12s`, `3h`, `2d4h`)."""
    try:
        then = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return "<unknown>"
    seconds = max(0, int(now - then))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"


def _age(obj: Obj, now: float) -> str:
    return age(now, obj["metadata"].get("creationTimestamp", ""))


def _pod_ready(pod: Obj, now: float) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    total = len((pod.get("spec") or {}).get("containers") or [])
    return f"{sum(1 for s in statuses if s.get('ready'))}/{total}"


def _pod_status(pod: Obj, now: float) -> str:
    """As the real printer: a container's waiting or terminated reason over the phase,
    `Terminating` once deleted."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        found = (state.get("waiting") or {}).get("reason") or (
            state.get("terminated") or {}).get("reason")
        if found:
            reason = found
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return str(reason)


def _pod_restarts(pod: Obj, now: float) -> int:
    return sum(int(s.get("restartCount") or 0)
               for s in (pod.get("status") or {}).get("containerStatuses") or [])


def _or_none(value: Any) -> str:
    return str(value) if value not in (None, "") else "<none>"


def _event_seen(event: Obj, now: float) -> str:
    return age(now, event.get("lastTimestamp") or event.get("eventTime") or
               event["metadata"].get("creationTimestamp", ""))


def _event_object(event: Obj, now: float) -> str:
    involved = event.get("involvedObject") or {}
    return f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}"


def _ports(service: Obj, now: float) -> str:
    ports = (service.get("spec") or {}).get("ports") or []
    return ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in ports) or "<none>"


COLUMNS: dict[str, list[Column]] = {
    "pods": [
        ("Ready", "string", 0, _pod_ready),
        ("Status", "string", 0, _pod_status),
        ("Restarts", "string", 0, _pod_restarts),
        ("Age", "string", 0, _age),
        ("IP", "string", 1, lambda p, now: _or_none((p.get("status") or {}).get("podIP"))),
        ("Node", "string", 1, lambda p, now: _or_none((p.get("spec") or {}).get("nodeName"))),
    ],
    "events": [
        ("Last Seen", "string", 0, _event_seen),
        ("Type", "string", 0, lambda e, now: e.get("type", "")),
        ("Reason", "string", 0, lambda e, now: e.get("reason", "")),
        ("Object", "string", 0, _event_object),
        ("Message", "string", 0, lambda e, now: e.get("message", "")),
        ("Count", "string", 1, lambda e, now: e.get("count", 1)),
        ("Name", "string", 1, lambda e, now: e["metadata"]["name"]),
    ],
    "services": [
        ("Type", "string", 0, lambda s, now: (s.get("spec") or {}).get("type", "ClusterIP")),
        ("Cluster-IP", "string", 0,
         lambda s, now: _or_none((s.get("spec") or {}).get("clusterIP"))),
        ("External-IP", "string", 0, lambda s, now: "<none>"),
        ("Port(s)", "string", 0, _ports),
        ("Age", "string", 0, _age),
    ],
    "namespaces": [
        ("Status", "string", 0, lambda n, now: (n.get("status") or {}).get("phase", "Active")),
        ("Age", "string", 0, _age),
    ],
}


@functools.cache
def _crd_columns() -> list[Column]:
    """The CRD's additionalPrinterColumns (simple `.a.b` JSON paths, as ours are)."""
    crd = yaml.safe_load((resources.files("sim") / "crd.yaml").read_text())
    out: list[Column] = []
    for column in crd["spec"]["versions"][0].get("additionalPrinterColumns") or []:
        path = column["jsonPath"].strip(".").split(".")
        if column["type"] == "date":
            def cell(obj: Obj, now: float, path: list[str] = path) -> Any:
                return age(now, str(_at(obj, path) or ""))
        else:
            def cell(obj: Obj, now: float, path: list[str] = path) -> Any:
                value = _at(obj, path)
                return "" if value is None else value
        out.append((column["name"], column["type"], int(column.get("priority", 0)), cell))
    return out


def _at(obj: Obj, path: list[str]) -> Any:
    value: Any = obj
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def table(resource: str, items: list[Obj], meta: dict[str, str], now: float) -> Obj:
    """A meta.k8s.io/v1 Table of `items`; kinds without a printer get `NAME AGE`."""
    columns = _crd_columns() if resource == "rayclusters" else COLUMNS.get(
        resource, [("Age", "string", 0, _age)])
    if not any(name == "Name" for name, *_ in columns):  # first, but for events (last)
        columns = [("Name", "string", 0, lambda obj, now: obj["metadata"]["name"]), *columns]
    definitions = [{"name": name, "type": kind, "format": "name" if name == "Name" else "",
                    "priority": priority, "description": ""}
                   for name, kind, priority, _ in columns]
    rows = [{"cells": [cell(obj, now) for *_, cell in columns],
             "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                        "metadata": obj["metadata"]}} for obj in items]
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta,
            "columnDefinitions": definitions, "rows": rows}
