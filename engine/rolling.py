"""Gentle rolling updates: outdated workers are replaced a few at a time, never below min.

When a pod type's podConfig changes, Ray's autoscaler removes every outdated worker at once,
busy or not. The operator replaces them as a Deployment rolls its pods, read off the spec's
`rollingUpdate`:
- at most `maxUnavailable` outdated workers are on their way out at a time (being drained
  or deleted), the rest wait for a later pass;
- the order is: pods not running (nothing runs there), then idle workers (least recently
  used first), then busy ones; each running one is drained first (`engine.drains`), so a
  busy worker stays until Ray lets it go;
- a running worker goes only if its type keeps at least min(minWorkers, maxWorkers)
  running workers without it; where it would not, up to `maxSurge` current replacements
  are launched first (`surge`), and the outdated worker goes once they run.

Outdated workers do not count towards their type's maxWorkers while they are replaced (a
surge above the maximum is the point), nor towards the global maximum.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from engine import events as ev
from engine.records import ClusterState


def in_flight(cs: ClusterState) -> int:
    """Outdated workers already on their way out (being drained, drained or deleted)."""
    spec = cs.spec
    assert spec is not None
    count = 0
    for name in (*cs.draining, *cs.drained, *cs.deleting):
        pod = cs.pods.get(name)
        if pod is None or pod.role != ev.WORKER:
            continue
        t = spec.pod_types.get(pod.pod_type)
        if t is None or t.launch_hash != pod.launch_hash:
            count += 1
    return count


def replace(cs: ClusterState, outdated: list[ev.PodSeen], workers: Iterable[ev.PodSeen],
            removed: Iterable[str], last_used: Mapping[str, float], *, idle_reason: str,
            outdated_reason: str, cutoff: float, idle: bool
            ) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Which outdated workers go now, and why (idle past the timeout, else outdated), and
    how many per type wait only for minWorkers (the surge wanted)."""
    spec = cs.spec
    assert spec is not None
    gone = set(removed)
    usable = Counter(p.pod_type for p in workers
                     if p.phase == ev.RUNNING and p.name not in gone)
    budget = spec.max_unavailable - in_flight(cs)
    idle_ips = cs.idle_since
    order = sorted(outdated, key=lambda p: (p.phase == ev.RUNNING, p.ip not in idle_ips,
                                            last_used.get(p.name, -1.0)))
    out: list[tuple[str, str]] = []
    blocked: dict[str, int] = {}
    for pod in order:
        used = last_used.get(pod.name)
        reason = idle_reason if idle and used is not None and used < cutoff else outdated_reason
        if pod.phase != ev.RUNNING:
            out.append((pod.name, reason))
            continue
        if budget <= 0:
            continue
        t = spec.pod_types.get(pod.pod_type)
        floor = min(t.min_workers, t.max_workers) if t is not None else 0
        if usable[pod.pod_type] - 1 < floor:
            blocked[pod.pod_type] = blocked.get(pod.pod_type, 0) + 1
            continue
        usable[pod.pod_type] -= 1
        budget -= 1
        out.append((pod.name, reason))
    return out, blocked


def surge(cs: ClusterState, blocked: Mapping[str, int]) -> dict[str, int]:
    """Replacements to launch ahead for types whose outdated workers wait for minWorkers."""
    spec = cs.spec
    assert spec is not None
    out = {}
    for pod_type, n in blocked.items():
        want = min(n, spec.max_surge) - cs.inflight.get(pod_type, 0)
        if want > 0 and pod_type in spec.pod_types:
            out[pod_type] = want
    return out
