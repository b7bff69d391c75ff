"""Exact snapshots of the state, as plain JSON-able data.

`snapshot(state)` returns a dict that shares nothing mutable with the state; `restore(data)`
builds a state that folds every later event exactly as the original would have. The
property `restore(snapshot(fold(a))) + fold(b) == fold(a + b)` is tested, and B6 in bench/
measures it at 100k pods. Specs are not stored: they are re-read from the stored RayCluster
object, which is what they were read from.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import attrs

from engine import claims, demand, load
from engine import events as ev
from engine import lifecycle as lc
from engine import spec as specs
from engine import state as st
from engine.errors import InvalidSpec
from engine.phases import Phase

FORMAT = 1

_POD_FIELDS = ("name", "pod_type", "role", "phase", "ip", "terminating", "launch_hash", "at",
               "uid", "created", "waiting")
_SKIP = frozenset({"key", "spec", "pods", "creating", "load", "phase", "status_sent",
                   "status_sent_at", "wake_pending", "expiry_at", "oldest_use", "announce",
                   "live_ips", "ray_nodes", "free_total", "node_free", "joined", "connected",
                   "claim",
                   "head_current", "settled", "idle_stale", "idle_timeout",
                   "templates", "types_memo", "notices"})
_RESTORED = frozenset({"dead", "deleting"})  # saved in another form: restored one by one


def snapshot(state: st.State) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "now": state.now,
        "synced": state.synced,
        "timer_seq": state.timer_seq,
        "cluster_seq": state.cluster_seq,
        "timers": [[at, seq, list(key)] for at, seq, key in sorted(state.timers)],
        "dirty": [list(k) for k in state.dirty],
        "clusters": [_cluster(cs) for cs in state.clusters.values()],
        "install": None if state.install is None else attrs.asdict(state.install),
        "own_leases": {ns: [_finite(o.renewed_at), _finite(o.due), o.issued_at, o.inflight]
                       for ns, o in state.own_leases.items()},
        "lease_due": _finite(state.lease_due),
        "peers": [[ns, name, p.renewed, _finite(p.observed_at), p.seconds, p.gone]
                  for (ns, name), p in state.peers.items()],
        "namespaces": dict(state.namespaces),
        "rivals": [[ns, r.instance, r.renewed, r.observed_at, r.seconds, r.told]
                   for ns, r in state.rivals.items()],
    }


def _finite(value: float) -> float | str:
    return value if not math.isinf(value) else ("inf" if value > 0 else "-inf")


def _cluster(cs: st.ClusterState) -> dict[str, Any]:
    out: dict[str, Any] = {"key": list(cs.key), "phase": cs.phase.value}
    for f in dataclasses.fields(st.ClusterState):
        if f.name in _SKIP:
            continue
        value = getattr(cs, f.name)
        out[f.name] = copy.deepcopy(value)
    out["pods"] = [[getattr(p, k) for k in _POD_FIELDS] for p in cs.pods.values()]
    out["creating"] = [[n, c.pod_type, c.role, c.issued_at, c.acked]
                       for n, c in cs.creating.items()]
    out["dead"] = list(cs.dead)
    out["load"] = None if cs.load is None else _load(cs.load)
    out["ray_nodes"] = [[n.ip, dict(n.total), dict(n.available), n.idle_seconds, at]
                        for n, at in cs.ray_nodes.values()]
    sent = cs.status_sent
    out["status_sent"] = None if sent is None else [
        [sent.signature.phase.value, *sent.signature[1:]], sent.counts,
        None if sent.demand is None else list(sent.demand)]
    out["status_sent_at"] = None if math.isinf(cs.status_sent_at) else cs.status_sent_at
    out["wake_pending"] = None if math.isinf(cs.wake_pending) else cs.wake_pending
    out["expiry_at"] = None if math.isinf(cs.expiry_at) else cs.expiry_at
    oldest = min(cs.idle_since.values(), default=math.inf) if cs.idle_stale else cs.oldest_use
    out["oldest_use"] = None if math.isinf(oldest) else oldest
    out["announce"] = None if math.isinf(cs.announce) else cs.announce
    out["claim"] = None if cs.claim is None else cs.claim.encode()
    return out


def _load(load: ev.RayLoad) -> dict[str, Any]:
    return {
        "at": load.at,
        "pending": [[dict(b.resources), b.count] for b in load.pending],
        "requests": [[dict(b.resources), b.count] for b in load.requests],
        "placement_groups": [[g.strategy, [dict(b) for b in g.bundles]]
                             for g in load.placement_groups],
        "nodes": [[n.ip, dict(n.total), dict(n.available), n.idle_seconds] for n in load.nodes],
        "partial": load.partial,
        "gone": list(load.gone),
    }


def restore(data: dict[str, Any]) -> st.State:
    if data.get("format") != FORMAT:
        raise ValueError(f"snapshot format: expected {FORMAT}, got {data.get('format')!r}")
    state = st.State(
        now=data["now"], synced=data["synced"], timer_seq=data["timer_seq"],
        cluster_seq=data["cluster_seq"],
        timers=[(at, seq, (key[0], key[1])) for at, seq, key in data["timers"]],
        dirty={(k[0], k[1]): None for k in data["dirty"]},
        install=None if data.get("install") is None else claims.Install(**data["install"]),
        lease_due=float(data.get("lease_due", "inf")),
        namespaces=dict(data.get("namespaces", {})),
    )
    for ns, (renewed_at, due, issued_at, inflight) in data.get("own_leases", {}).items():
        state.own_leases[ns] = st.OwnLease(renewed_at=float(renewed_at), due=float(due),
                                           issued_at=issued_at, inflight=inflight)
    for ns, name, renewed, observed_at, seconds, gone in data.get("peers", []):
        state.peers[(ns, name)] = st.Peer(renewed=renewed, observed_at=float(observed_at),
                                          seconds=seconds, gone=gone)
    for ns, instance, renewed, observed_at, seconds, told in data.get("rivals", []):
        state.rivals[ns] = st.Rival(instance=instance, renewed=renewed,
                                    observed_at=observed_at, seconds=seconds, told=told)
    for raw in data["clusters"]:
        cs = _restore_cluster(raw)
        state.clusters[cs.key] = cs
    return state


def _restore_cluster(raw: dict[str, Any]) -> st.ClusterState:
    key = (raw["key"][0], raw["key"][1])
    cs = st.ClusterState(key=key)
    for f in dataclasses.fields(st.ClusterState):
        if f.name in _SKIP or f.name in _RESTORED or f.name not in raw:
            continue
        setattr(cs, f.name, copy.deepcopy(raw[f.name]))
    cs.phase = Phase(raw["phase"])
    cs.dead = dict.fromkeys(raw["dead"])
    cs.deleting = dict(raw["deleting"])
    for values in raw["pods"]:
        fields = dict(zip(_POD_FIELDS, values, strict=False))  # older ones lack the last
        cs.pods[fields["name"]] = ev.PodSeen(cluster=key, **fields)
    for name, pod_type, role, issued_at, acked in raw["creating"]:
        cs.creating[name] = st.Creating(pod_type=pod_type, role=role, issued_at=issued_at,
                                        acked=acked)
    if raw["load"] is not None:
        cs.load = _restore_load(key, raw["load"])
    for ip, total, available, idle, at in raw["ray_nodes"]:
        cs.ray_nodes[ip] = (ev.RayNode(ip=ip, total=total, available=available,
                                       idle_seconds=idle), at)
        cs.node_free[ip] = available
        load.add_free(cs.free_total, available, 1.0)
    if raw["status_sent"] is not None:
        (phase, *rest), counts, *more = raw["status_sent"]
        note = demand.Note(*more[0]) if more and more[0] is not None else None
        cs.status_sent = st.Sent(st.Signature(Phase(phase), *rest), counts, note)
    at = raw["status_sent_at"]
    cs.status_sent_at = -math.inf if at is None else at
    wake = raw["wake_pending"]
    cs.wake_pending = math.inf if wake is None else wake
    cs.expiry_at = math.inf if raw["expiry_at"] is None else raw["expiry_at"]
    cs.oldest_use = math.inf if raw["oldest_use"] is None else raw["oldest_use"]
    cs.announce = math.inf if raw["announce"] is None else raw["announce"]
    if cs.claim_writing is not None:  # a pair, as JSON has it a list
        fence, replaced = cs.claim_writing
        cs.claim_writing = (fence, replaced)
    if raw.get("claim") is not None:
        cs.claim = claims.parse({"metadata": {"annotations": {claims.ANNOTATION: raw["claim"]}}})
    for pod in cs.pods.values():
        if pod.ip and pod.live and pod.name not in cs.deleting:
            cs.live_ips[pod.ip] = pod
    load.rejoin(cs)
    if cs.obj is not None and not cs.problems:
        try:
            cs.spec = specs.from_raycluster(cs.obj)
        except InvalidSpec:  # pragma: no cover - it was valid when it was read
            cs.spec = None
    if cs.spec is not None:
        cs.idle_timeout = cs.spec.idle_timeout_seconds
    lc.check_head(cs)
    return cs


def _restore_load(key: ev.ClusterKey, raw: dict[str, Any]) -> ev.RayLoad:
    return ev.RayLoad(
        cluster=key,
        at=raw["at"],
        pending=tuple(ev.Bundle(resources=r, count=c) for r, c in raw["pending"]),
        requests=tuple(ev.Bundle(resources=r, count=c) for r, c in raw["requests"]),
        placement_groups=tuple(ev.PlacementGroup(strategy=s, bundles=tuple(b))
                               for s, b in raw["placement_groups"]),
        nodes=tuple(ev.RayNode(ip=i, total=t, available=a, idle_seconds=s)
                    for i, t, a, s in raw["nodes"]),
        partial=raw["partial"],
        gone=tuple(raw["gone"]),
    )
