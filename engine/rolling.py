"""Gentle rolling updates: outdated workers are replaced a few at a time, never below min.

When a pod type's podConfig changes, Ray's autoscaler removes every outdated worker at once,
busy or not. The operator replaces them as a Deployment rolls its pods, read off the spec's
`rollingUpdate`:
- at most `maxUnavailable` outdated workers are on their way out at a time (being drained
  or deleted), the rest wait for a later pass;
- pods not running go at once (nothing runs there), then idle workers, least recently used
  first; a worker Ray last reported busy waits until it is idle, and each is drained first
  (`engine.drains`), so one that became busy since stays until Ray lets it go;
- a running worker goes only if its type keeps at least min(minWorkers, maxWorkers)
  running workers without it; where it would not, up to `maxSurge` current replacements
  are launched first, and the outdated worker goes once they run. With `maxSurge` 0 (no
  room to spare) the type may go up to `maxUnavailable` below its minimum instead.

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
            removed: Iterable[str], last_used: Mapping[str, float], held: set[str], *,
            idle_reason: str, outdated_reason: str, cutoff: float, idle: bool
            ) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """Which outdated workers go now, and why (idle past the timeout, else outdated), and
    the replacements to launch ahead per type (`maxSurge`) where minWorkers holds them.
    Those in `held` (Ray refused to drain them a moment ago) stay this time."""
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
        if pod.name in held:
            continue
        used = last_used.get(pod.name)
        reason = idle_reason if idle and used is not None and used < cutoff else outdated_reason
        if pod.phase != ev.RUNNING:
            out.append((pod.name, reason))
            continue
        if budget <= 0 or (pod.ip in cs.joined and pod.ip not in idle_ips):
            continue  # no room, or busy as Ray last said: it waits until idle
        if usable[pod.pod_type] - 1 < floor(cs, pod.pod_type):
            blocked[pod.pod_type] = blocked.get(pod.pod_type, 0) + 1
            continue
        usable[pod.pod_type] -= 1
        budget -= 1
        out.append((pod.name, reason))
    return out, _surge(cs, blocked)


def floor(cs: ClusterState, pod_type: str) -> int:
    """The running workers a type keeps during an update: min(minWorkers, maxWorkers); with
    maxSurge 0 (no room for a replacement ahead) up to maxUnavailable fewer, or the update
    could never start on a type at its minimum."""
    spec = cs.spec
    assert spec is not None
    t = spec.pod_types.get(pod_type)
    if t is None:
        return 0
    low = min(t.min_workers, t.max_workers)
    return low if spec.max_surge > 0 else max(0, low - spec.max_unavailable)


def _surge(cs: ClusterState, blocked: Mapping[str, int]) -> dict[str, int]:
    """Replacements to launch ahead for types whose outdated workers wait for minWorkers:
    the type may hold up to min(minWorkers, maxWorkers) + maxSurge pods, those going aside."""
    spec = cs.spec
    assert spec is not None
    going = Counter(cs.pods[n].pod_type for n in (*cs.draining, *cs.drained) if n in cs.pods)
    out = {}
    for pod_type, n in blocked.items():
        t = spec.pod_types.get(pod_type)
        if t is None:
            continue
        have = cs.live.get(pod_type, 0) + cs.inflight.get(pod_type, 0) - going[pod_type]
        want = min(n, min(t.min_workers, t.max_workers) + spec.max_surge - have)
        if want > 0:
            out[pod_type] = want
    return out
