"""`python -m sim plan CLUSTER.yaml [--state STATE.json]` or `plan NAMESPACE/NAME --record
DIR`: the engine's decision, dry.

The RayCluster and the observed state (pods, Ray load; docs/simulator.md) become the events
the engine would have seen; the plan it makes now is printed and nothing is executed. This
is how to ask "what would a `helm upgrade` or this load do to my cluster?". With a live
run's record, the state is the one the operator had at the record's end.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from driver import record
from engine import actions as act
from engine import checks, codec, planner, snapshots
from engine import events as ev
from engine import spec as specs
from engine import state as st
from engine.errors import InvalidSpec
from sim.reading import ScenarioError, read_text, read_yaml

_STATE_KEYS = {"now", "pods", "load"}
_POD_KEYS = {"name", "type", "role", "phase", "idleSeconds", "rayConnected", "outdated"}
_OLD_KEYS = {"idle_seconds": "idleSeconds", "ray_connected": "rayConnected",
             "request_resources": "requestResources"}
"""Keys of the state file's first spelling, still read."""


def _camel(item: object) -> object:
    """`item` with the state file's older snake_case keys read as their camelCase names."""
    if not isinstance(item, dict):
        return item
    return {_OLD_KEYS.get(k, k): v for k, v in item.items()}


def dry_run(cluster_path: str, state_path: str | None) -> dict[str, Any]:
    obj = _read(cluster_path, yaml.safe_load)
    if not isinstance(obj, dict) or obj.get("kind") != "RayCluster":
        raise ScenarioError(cluster_path, "kind", f"expected a RayCluster, got {obj!r:.60}")
    meta = obj.setdefault("metadata", {})
    meta.setdefault("namespace", "default")
    meta.setdefault("uid", "dry-run")
    meta.setdefault("generation", 1)
    try:
        cluster = specs.from_raycluster(obj)
    except InvalidSpec as exc:
        raise ScenarioError(cluster_path, str(exc.problems[0].path),
                            "; ".join(str(p) for p in exc.problems)) from None
    observed = _read(state_path, json.loads) if state_path else {}
    if not isinstance(observed, dict):
        raise ScenarioError(str(state_path), "(file)", "expected a JSON object")
    unknown = set(observed) - _STATE_KEYS
    if unknown:
        raise ScenarioError(str(state_path), sorted(unknown)[0],
                            f"unknown field; expected one of {sorted(_STATE_KEYS)}")
    where = str(state_path)
    now = _number(observed.get("now", 0.0), where, "now")
    key = (cluster.namespace, cluster.name)
    events: list[ev.Event] = [ev.ClusterSeen(cluster=key, at=now, uid=cluster.uid,
                                             generation=cluster.generation, obj=obj)]
    nodes = []
    head_seen = False
    pods = observed.get("pods") or []
    if not isinstance(pods, list):
        raise ScenarioError(where, "pods", "expected a list")
    for i, pod in enumerate(pods):
        path = f"pods[{i}]"
        pod = _camel(pod)
        if not isinstance(pod, dict) or set(pod) - _POD_KEYS:
            raise ScenarioError(where, path,
                                f"expected an object with keys from {sorted(_POD_KEYS)}")
        pod_type = pod.get("type")
        t = cluster.pod_types.get(str(pod_type))
        if t is None:
            raise ScenarioError(where, f"{path}.type",
                                f"expected one of {sorted(cluster.pod_types)}, got {pod_type!r}")
        role = pod.get("role") or (ev.HEAD if pod_type == cluster.head_pod_type
                                   and not head_seen else ev.WORKER)
        phase = pod.get("phase", ev.RUNNING)
        if role not in (ev.HEAD, ev.WORKER) or phase not in _PHASES:
            raise ScenarioError(where, path, f"expected role head or worker and phase one of "
                                             f"{sorted(_PHASES)}, got {role!r} {phase!r}")
        head_seen = head_seen or role == ev.HEAD
        ip = f"10.0.{i // 250}.{i % 250 + 1}"
        events.append(ev.PodSeen(cluster=key, at=now, name=str(pod.get("name", f"pod-{i}")),
                                 pod_type=t.name, role=role, phase=phase,
                                 ip=ip if phase == ev.RUNNING else "",
                                 launch_hash="" if pod.get("outdated") else t.launch_hash))
        if phase == ev.RUNNING and pod.get("rayConnected", True):
            idle = _number(pod.get("idleSeconds", 0.0), where, f"{path}.idleSeconds")
            free = dict(t.resources) if idle > 0 else {k: 0.0 for k in t.resources}
            nodes.append(ev.RayNode(ip=ip, total=dict(t.resources), available=free,
                                    idle_seconds=idle))
    load = _camel(observed.get("load") or {})
    if not isinstance(load, dict) or set(load) - {"pending", "requestResources"}:
        raise ScenarioError(where, "load",
                            "expected an object with pending and requestResources lists")
    events.append(ev.RayLoad(
        cluster=key, at=now, pending=_bundles(load.get("pending"), where, "load.pending"),
        requests=_bundles(load.get("requestResources"), where, "load.requestResources"),
        nodes=tuple(nodes),
    ))
    events.append(ev.Synced(at=now))
    state = st.initial()
    for event in events:
        state = st.evolve(state, event)
    return _decision(planner.plan(state, now))


def recorded(cluster: str, folder: str) -> dict[str, Any]:
    """The decision for `cluster` (NAMESPACE/NAME) on the state a live run's record
    (`ray-operator --record DIR`) ends in: its snapshot and events folded again, then a
    full autoscaler pass planned at the record's last time."""
    namespace, _, name = cluster.partition("/")
    if not namespace or not name:
        raise ScenarioError(cluster, "(cluster)", "expected NAMESPACE/NAME with --record")
    try:
        state = _fold(record.lines(Path(folder)))
    except record.RecordError as exc:
        raise ScenarioError(folder, "(record)", str(exc)) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ScenarioError(folder, "(record)", f"cannot be folded: {exc}") from exc
    key = (namespace, name)
    cs = state.clusters.get(key)
    if cs is None:
        known = ", ".join(f"{ns}/{n}" for ns, n in sorted(state.clusters)) or "none"
        raise ScenarioError(folder, "(record)", f"has no cluster {cluster} (it has: {known})")
    cs.needs_update = True
    state.dirty[key] = None
    actions = planner.plan(state, state.now)
    return _decision(tuple(a for a in actions if a.cluster == key))


def _fold(lines: Iterable[str]) -> st.State:
    """The state at the end of a record: from its oldest snapshot, every event folded."""
    state: st.State | None = None
    for line in lines:
        item = json.loads(line)
        if item.get("kind") == "snapshot" and state is None:
            state = snapshots.restore(item["state"])
        elif item.get("kind") == "event" and state is not None:
            state, _ = planner.step(state, codec.event_from_dict(item))
    if state is None:
        raise ValueError("no snapshot to start from")
    return state


def _decision(actions: tuple[act.Action, ...]) -> dict[str, Any]:
    launch = Counter(a.pod_type for a in actions
                     if isinstance(a, act.CreatePod) and a.role == ev.WORKER)
    return {
        "launch": dict(sorted(launch.items())),
        # workers to remove: a running one is drained first (its delete follows Ray's yes)
        "terminate": [{"pod": a.name, "reason": a.reason,
                       "drainFirst": isinstance(a, act.DrainNode)} for a in actions
                      if isinstance(a, act.DeletePod | act.DrainNode)],
        "actions": [codec.action_to_dict(a) for a in actions],
    }


_PHASES = frozenset({ev.PENDING, ev.RUNNING, ev.SUCCEEDED, ev.FAILED, ev.UNKNOWN})


def _number(value: object, source: str, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            0 <= value <= 1e12):
        raise ScenarioError(source, path,
                            f"expected a number from 0 to 1e12, got {checks.show(value)}")
    return float(value)


def _bundles(value: object, source: str, path: str) -> tuple[ev.Bundle, ...]:
    """Demand as `[{resources: {name: amount}, count: n}]`."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ScenarioError(source, path, "expected a list of {resources, count}")
    out = []
    for i, item in enumerate(value):
        where = f"{path}[{i}]"
        if not isinstance(item, dict) or set(item) - {"resources", "count"} or not isinstance(
                item.get("resources"), dict):
            raise ScenarioError(source, where, "expected {resources: {name: amount}, count}")
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10**9:
            raise ScenarioError(source, f"{where}.count",
                                f"expected 1 to 1e9, got {checks.show(count)}")
        resources = {str(k): _number(v, source, f"{where}.resources.{k}")
                     for k, v in item["resources"].items()}
        out.append(ev.Bundle(resources=resources, count=count))
    return tuple(out)


def _read(path: str, parse: Any) -> Any:
    """A file's content, read as untrusted input (`sim.reading.read_text`)."""
    text = read_text(Path(path), path, "(file)")
    if parse is yaml.safe_load:
        return read_yaml(text, path, "(file)")
    try:
        data = parse(text)
    except (ValueError, RecursionError) as exc:
        raise ScenarioError(path, "(file)", f"cannot be parsed: {exc}") from None
    problem = checks.shape_problem(data)
    if problem is not None:
        raise ScenarioError(path, "(file)", problem)
    return data
