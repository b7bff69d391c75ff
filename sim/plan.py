"""`python -m sim plan CLUSTER.yaml [--state STATE.json]`: the engine's decision, dry.

The RayCluster and the observed state (pods, Ray load; interfaces.md §4) become the events
the engine would have seen; the plan it makes now is printed and nothing is executed. This
is how to ask "what would a `helm upgrade` or this load do to my cluster?".
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from engine import actions as act
from engine import codec, planner
from engine import events as ev
from engine import spec as specs
from engine import state as st
from engine.errors import InvalidSpec
from sim.scenario import ScenarioError

_STATE_KEYS = {"now", "pods", "load"}
_POD_KEYS = {"name", "type", "role", "phase", "idle_seconds", "ray_connected", "outdated"}


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
    now = float(observed.get("now", 0.0))
    key = (cluster.namespace, cluster.name)
    events: list[ev.Event] = [ev.ClusterSeen(cluster=key, at=now, uid=cluster.uid,
                                             generation=cluster.generation, obj=obj)]
    nodes = []
    head_seen = False
    for i, pod in enumerate(observed.get("pods") or []):
        path = f"pods[{i}]"
        if not isinstance(pod, dict) or set(pod) - _POD_KEYS:
            raise ScenarioError(str(state_path), path,
                                f"expected an object with keys from {sorted(_POD_KEYS)}")
        pod_type = pod.get("type")
        t = cluster.pod_types.get(str(pod_type))
        if t is None:
            raise ScenarioError(str(state_path), f"{path}.type",
                                f"expected one of {sorted(cluster.pod_types)}, got {pod_type!r}")
        role = pod.get("role") or (ev.HEAD if pod_type == cluster.head_pod_type
                                   and not head_seen else ev.WORKER)
        head_seen = head_seen or role == ev.HEAD
        phase = pod.get("phase", ev.RUNNING)
        ip = f"10.0.{i // 250}.{i % 250 + 1}"
        events.append(ev.PodSeen(cluster=key, at=now, name=str(pod.get("name", f"pod-{i}")),
                                 pod_type=t.name, role=role, phase=phase,
                                 ip=ip if phase == ev.RUNNING else "",
                                 launch_hash="" if pod.get("outdated") else t.launch_hash))
        if phase == ev.RUNNING and pod.get("ray_connected", True):
            idle = float(pod.get("idle_seconds", 0.0))
            free = dict(t.resources) if idle > 0 else {k: 0.0 for k in t.resources}
            nodes.append(ev.RayNode(ip=ip, total=dict(t.resources), available=free,
                                    idle_seconds=idle))
    load = observed.get("load") or {}
    events.append(ev.RayLoad(
        cluster=key, at=now,
        pending=tuple(ev.Bundle(resources=b["resources"], count=b.get("count", 1))
                      for b in load.get("pending") or []),
        requests=tuple(ev.Bundle(resources=b["resources"], count=b.get("count", 1))
                       for b in load.get("request_resources") or []),
        nodes=tuple(nodes),
    ))
    events.append(ev.Synced(at=now))
    state = st.initial()
    for event in events:
        state = st.evolve(state, event)
    actions = planner.plan(state, now)
    launch = Counter(a.pod_type for a in actions
                     if isinstance(a, act.CreatePod) and a.role == ev.WORKER)
    return {
        "launch": dict(sorted(launch.items())),
        "terminate": [{"pod": a.name, "reason": a.reason} for a in actions
                      if isinstance(a, act.DeletePod)],
        "actions": [codec.action_to_dict(a) for a in actions],
    }


def _read(path: str, parse: Any) -> Any:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ScenarioError(path, "(file)", f"cannot be read: {exc.strerror or exc}") from None
    try:
        return parse(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(path, "(file)", f"cannot be parsed: {exc}") from None
