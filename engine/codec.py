"""Events and actions as JSON objects, and back: the trace format and the replay input.

A trace line is `{"t", "seq", "kind", "operator", "cluster", "type", ...fields}` (see
docs/simulator.md). `event_to_dict`/`event_from_dict` round-trip every event exactly, so a
trace replays to the same decisions; `action_to_dict` is what a trace records of an action
and what `replay` compares.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from engine import actions as act
from engine import events as ev

EVENT_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (ev.ClusterSeen, ev.ClusterDeleted, ev.PodSeen, ev.PodGone, ev.RayLoad,
                ev.RayUnreachable, ev.Tick, ev.ActionResult, ev.Synced, ev.ServiceGone,
                ev.LeaseSeen, ev.LeaseGone)
}
ACTION_TYPES: dict[str, type] = {
    cls.__name__: cls
    for cls in (act.CreatePod, act.DeletePod, act.DrainNode, act.ApplyService, act.PatchStatus,
                act.EmitEvent, act.Log, act.Requeue, act.WriteClaim, act.RenewLease)
}


_FIELDS: dict[type, frozenset[str]] = {
    cls: frozenset(f.name for f in dataclasses.fields(cls)) for cls in EVENT_TYPES.values()
}


def cluster_name(key: ev.ClusterKey | None) -> str | None:
    return None if key is None else f"{key[0]}/{key[1]}"


def parse_cluster(text: str) -> ev.ClusterKey:
    namespace, _, name = text.partition("/")
    return (namespace, name)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(type(value))}
    return value


def event_to_dict(event: ev.Event) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(event).__name__}
    for f in dataclasses.fields(type(event)):
        value = getattr(event, f.name)
        out[f.name] = cluster_name(value) if f.name == "cluster" else _plain(value)
    return out


def action_to_dict(action: act.Action) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(action).__name__}
    for f in dataclasses.fields(type(action)):
        if f.name in ("template", "signature", "demand"):  # derived, not what it says
            continue
        value = getattr(action, f.name)
        name = "event_type" if f.name == "type" else f.name  # "type" names the action
        out[name] = cluster_name(value) if f.name == "cluster" else _plain(value)
    if isinstance(action, act.CreatePod):
        out["manifest"] = _plain(action.manifest)
    out.setdefault("cluster", cluster_name(action.cluster))  # a lease: "<namespace>/"
    return out


def event_from_dict(data: Mapping[str, Any]) -> ev.Event:
    kind = data.get("type")
    cls = EVENT_TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"type: expected one of {sorted(EVENT_TYPES)}, got {kind!r}")
    fields = _FIELDS[cls]
    args: dict[str, Any] = {k: v for k, v in data.items() if k in fields}
    if "cluster" in args:
        args["cluster"] = parse_cluster(args["cluster"])
    if cls is ev.RayLoad:
        args["pending"] = tuple(ev.Bundle(**b) for b in args.get("pending", ()))
        args["requests"] = tuple(ev.Bundle(**b) for b in args.get("requests", ()))
        args["placement_groups"] = tuple(
            ev.PlacementGroup(strategy=g["strategy"], bundles=tuple(g["bundles"]))
            for g in args.get("placement_groups", ())
        )
        args["nodes"] = tuple(ev.RayNode(**n) for n in args.get("nodes", ()))
        args["gone"] = tuple(args.get("gone", ()))
    event: ev.Event = cls(**args)
    return event
