"""Kubernetes objects in, engine events out: the one translation both worlds share.

A watch or list of RayClusters, Pods and Services (the dicts the API returns) becomes the
engine's facts. Only pods that carry the operator's labels are translated; anything else is
not ours and is ignored. A malformed object raises `Malformed` naming what is wrong, so the
caller can log it once, count it and skip it.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from engine import claims
from engine import events as ev
from engine.labels import LABEL_CLUSTER, LABEL_HASH, LABEL_KIND, LABEL_TYPE

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


class Malformed(ValueError):
    """An object the driver cannot read (missing metadata, wrong types)."""


_KEYS: dict[tuple[str, str], ev.ClusterKey] = {}
_KEYS_LIMIT = 100_000


def _key(namespace: str, name: str) -> ev.ClusterKey:
    """One shared (namespace, name) tuple of interned strings per cluster: every pod event
    of a cluster points at it, instead of carrying its own copies parsed from JSON (this
    halves what an adopted pod costs the process). Bounded: cleared when it grows large."""
    found = _KEYS.get((namespace, name))
    if found is None:
        if len(_KEYS) >= _KEYS_LIMIT:
            _KEYS.clear()
        found = _KEYS.setdefault((namespace, name), (sys.intern(namespace), sys.intern(name)))
    return found


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("name"), str):
        raise Malformed("metadata.name: expected a string")
    return meta


def key_of(obj: Mapping[str, Any]) -> ev.ClusterKey:
    meta = _meta(obj)
    return _key(str(meta.get("namespace") or "default"), str(meta["name"]))


def raycluster(kind: str, obj: Mapping[str, Any], at: float) -> ev.Event:
    """A RayCluster watch event; one being deleted counts as deleted at once."""
    meta = _meta(obj)
    key = key_of(obj)
    if kind == DELETED or meta.get("deletionTimestamp"):
        return ev.ClusterDeleted(cluster=key, at=at)
    generation = meta.get("generation", 1)
    return ev.ClusterSeen(cluster=key, at=at, uid=str(meta.get("uid", "")),
                          generation=generation if isinstance(generation, int) else 1,
                          obj=obj)


def pod(kind: str, obj: Mapping[str, Any], at: float) -> ev.Event | None:
    """A Pod watch event, or None for a pod that is not a Ray node of some cluster."""
    meta = _meta(obj)
    labels = meta.get("labels") or {}
    cluster_name = labels.get(LABEL_CLUSTER)
    if not cluster_name:
        return None
    key = _key(str(meta.get("namespace") or "default"), str(cluster_name))
    if kind == DELETED:
        return ev.PodGone(cluster=key, at=at, name=str(meta["name"]))
    status = obj.get("status") or {}
    intern = sys.intern  # values shared by many pods are stored once
    return ev.PodSeen(
        cluster=key,
        at=at,
        name=str(meta["name"]),
        pod_type=intern(str(labels.get(LABEL_TYPE, ""))),
        role=ev.HEAD if labels.get(LABEL_KIND) == ev.HEAD else ev.WORKER,
        phase=intern(str(status.get("phase") or ev.PENDING)),
        ip=str(status.get("podIP") or ""),
        terminating=bool(meta.get("deletionTimestamp")),
        launch_hash=intern(str(labels.get(LABEL_HASH, ""))),
        uid=str(meta.get("uid") or ""),
        created=seconds(meta.get("creationTimestamp")),
        waiting=waiting(status),
    )


@functools.lru_cache(maxsize=4096)
def _seconds(text: str) -> float:
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return -1.0


def seconds(value: object) -> float:
    """An RFC 3339 time of the API (`2026-01-02T03:04:05Z`) as seconds since the epoch; -1
    when missing or unreadable. Pods created in one second share it: memoized."""
    return _seconds(value) if isinstance(value, str) and value else -1.0


_STARTING = frozenset({"ContainerCreating", "PodInitializing"})


def waiting(status: Mapping[str, Any]) -> str:
    """Why a pod does not run, as its status says: unschedulable (PodScheduled False), or a
    container waiting for a reason other than starting up (ErrImagePull, ...)."""
    for c in status.get("containerStatuses") or ():
        wait = ((c or {}).get("state") or {}).get("waiting") if isinstance(c, Mapping) else None
        if isinstance(wait, Mapping) and wait.get("reason") not in _STARTING:
            return _reason(wait)
    if status.get("phase") in (None, ev.PENDING):
        for cond in status.get("conditions") or ():
            if isinstance(cond, Mapping) and cond.get("type") == "PodScheduled" \
                    and cond.get("status") == "False":
                return _reason(cond)
    return ""


def _reason(part: Mapping[str, Any]) -> str:
    reason, message = str(part.get("reason") or ""), str(part.get("message") or "")
    return f"{reason}: {message}"[:300] if message else reason[:300]


def service_cluster(obj: Mapping[str, Any]) -> ev.ClusterKey | None:
    """The cluster whose head Service this is, or None for a Service that is not ours."""
    meta = _meta(obj)
    cluster_name = (meta.get("labels") or {}).get(LABEL_CLUSTER)
    if not cluster_name:
        return None
    return _key(str(meta.get("namespace") or "default"), str(cluster_name))


def service(kind: str, obj: Mapping[str, Any], at: float) -> ev.Event | None:
    """Only the loss of a head Service matters: the engine creates it again."""
    key = service_cluster(obj)
    if kind != DELETED or key is None:
        return None
    return ev.ServiceGone(cluster=key, at=at)


def lease(kind: str, obj: Mapping[str, Any], at: float) -> ev.Event | None:
    """An operator install's Lease (labelled with its install name), or None for others."""
    meta = _meta(obj)
    install = (meta.get("labels") or {}).get(claims.LEASE_LABEL)
    if not install:
        return None
    namespace = str(meta.get("namespace") or "default")
    if kind == DELETED or meta.get("deletionTimestamp"):
        return ev.LeaseGone(namespace=namespace, install=str(install), at=at)
    spec = obj.get("spec") or {}
    seconds = spec.get("leaseDurationSeconds")
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        raise Malformed("spec.leaseDurationSeconds: expected a positive number")
    instance = (meta.get("annotations") or {}).get(claims.INSTANCE_ANNOTATION)
    return ev.LeaseSeen(namespace=namespace, install=str(install), at=at,
                        renewed=str(spec.get("renewTime") or ""), seconds=float(seconds),
                        instance=instance if isinstance(instance, str) else "")
