"""The status a cluster shows (`kubectl get rayclusters`) and when it is worth writing.

A status is written at once when its `Signature` (phase, restarts, generation, problems,
head readiness, ownership) changes, and worker counts at most every `STATUS_PERIOD`
seconds. `signature_of` reads the signature back from a status written earlier, possibly
by another operator process, so a restart does not write the same status again.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from engine import actions as act
from engine import demand
from engine import events as ev
from engine import lifecycle as lc
from engine.phases import Phase
from engine.records import STATUS_PERIOD, ClusterState, Sent, Signature, State


def signature_of(status: Mapping[str, Any]) -> Signature:
    """The signature of a status dict (written by us now, or by an earlier operator)."""
    try:
        phase = Phase(status.get("phase") or "")
    except ValueError:
        phase = Phase.NONE
    retries = status.get("autoscalerRetries")
    generation = status.get("observedGeneration")
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]
    ready = any(c.get("type") == "HeadPodReady" and c.get("status") == "True"
                for c in conditions)
    manager = status.get("managedBy")
    return Signature(
        phase=phase,
        retries=retries if isinstance(retries, int) else 0,
        generation=generation if isinstance(generation, int) else 0,
        problems=str(status.get("message") or ""),
        head_ready=ready,
        manager=manager if isinstance(manager, str) else "",
        conflict=_condition_message(conditions, "OwnershipConflict"),
        service_conflict=_condition_message(conditions, "ServiceConflict"),
        infeasible=_condition_message(conditions, "DemandFeasible", when="False"),
        held_reason=next((str(c.get("reason") or "") for c in conditions
                          if c.get("type") == "DemandMet" and c.get("status") == "False"), ""),
    )


def _condition_message(conditions: list[Mapping[str, Any]], kind: str,
                       when: str = "True") -> str:
    """The message of the condition `kind` when its status is `when`, else ""."""
    return next((str(c.get("message") or "") for c in conditions
                 if c.get("type") == kind and c.get("status") == when), "")


def signature(cs: ClusterState, conflict: str = "", note: demand.Note = demand.NONE
              ) -> Signature:
    manager = cs.claim.install if cs.claim is not None else ""
    return Signature(cs.phase, cs.retries, cs.generation, cs.problems,
                     bool(cs.head and cs.head_running), manager, conflict, cs.service_conflict,
                     note.infeasible, note.held_reason)


def plan_status(cs: ClusterState, now: float, out: list[act.Action], *,
                conflict: str = "", start: int = -1, note: demand.Note | None = None) -> bool:
    """Write the status when it changed (worker counts and demand counts at most every
    `STATUS_PERIOD`); return whether the one written is current, so nothing is to write,
    now or later. Its desired workers count the creates and deletes planned for `cs` since
    `out[start]`; `note` is what the pass found of unmet demand (None: no pass ran, the
    last one written stands)."""
    sent = cs.status_sent
    if note is None:
        note = sent.demand if sent is not None and sent.demand is not None else demand.NONE
    sig = signature(cs, conflict, note)
    if sent is not None and sent.signature == sig:
        if _same_counts(sent.counts, cs.live) and (sent.demand or demand.NONE) == note:
            return True
        due = cs.status_sent_at + STATUS_PERIOD
        if now < due:
            if cs.wake_pending > due:
                out.append(act.Requeue(cluster=cs.key, at=due))
            return False
    counts = {t: n for t, n in sorted(cs.live.items()) if n}
    fence = cs.claim.fence if cs.claim is not None else ""
    written = _status_dict(cs, now, sig, counts, out, start, note)
    out.append(act.PatchStatus(cluster=cs.key, status=written, uid=cs.uid, fence=fence,
                               signature=sig, demand=note))
    last = sent.signature if sent is not None else None
    if (last is None or last.phase != sig.phase or last.retries != sig.retries
            or last.problems != sig.problems):
        _announce(cs, out)
    if conflict and (last is None or last.conflict != conflict):
        out.append(act.Log(cluster=cs.key, level="WARNING", message=conflict))
    if sig.service_conflict and (last is None or last.service_conflict != sig.service_conflict):
        lc.tell(cs, "Warning", "ServiceConflict", "WARNING", sig.service_conflict, out)
    if sig.infeasible and (last is None or last.infeasible != sig.infeasible):
        lc.tell(cs, "Warning", "InfeasibleDemand", "WARNING", sig.infeasible, out)
    return False


def _same_counts(a: Mapping[str, int], b: Mapping[str, int]) -> bool:
    if a == b:
        return True
    return {k: v for k, v in a.items() if v} == {k: v for k, v in b.items() if v}


def _announce(cs: ClusterState, out: list[act.Action]) -> None:
    if cs.phase is Phase.ERROR:
        reason = cs.error_reason or "InvalidSpec"
        message = f"invalid RayCluster: {cs.problems}" if reason == "InvalidSpec" \
            else cs.problems
        lc.tell(cs, "Warning", reason, "ERROR", message, out)
    elif cs.phase is Phase.RECOVERY:
        message = (f"the head pod or Ray failed; restarting the cluster "
                   f"(restart {cs.retries}, not before {timestamp(cs.backoff_until)})")
        lc.tell(cs, "Warning", "HeadPodLost", "WARNING", message, out)
    elif cs.phase is not Phase.NONE:
        out.append(act.Log(cluster=cs.key, level="INFO",
                           message=f"phase {cs.phase.value}, restarts {cs.retries}"))


def desired_workers(cs: ClusterState, types: Iterable[str]) -> dict[str, int]:
    """Workers per type the engine wants now: the live ones plus the creates in flight,
    less those being drained to go."""
    desired = {t: cs.live.get(t, 0) + cs.inflight.get(t, 0) for t in types}
    for name in (*cs.draining, *cs.drained):
        pod = cs.pods.get(name)
        if pod is not None and pod.live and name not in cs.deleting \
                and desired.get(pod.pod_type, 0) > 0:
            desired[pod.pod_type] -= 1
    return desired


def _status_dict(cs: ClusterState, now: float, sig: Signature, counts: dict[str, int],
                 out: list[act.Action], start: int, note: demand.Note) -> dict[str, Any]:
    sent = cs.status_sent
    head_ready = sig.head_ready
    same = sent is not None and sent.signature.head_ready == head_ready
    head_since = cs.head_ready_since if same else now
    # Every type is listed, zeros included: a status is written as a merge patch, where a
    # type left out would keep its old count.
    types = sorted({*(cs.spec.pod_types if cs.spec else ()), *cs.live, *cs.inflight})
    workers = {t: cs.live.get(t, 0) for t in types}
    desired = desired_workers(cs, types)
    if start >= 0:  # what this same plan decides counts at once (`out[start:]`)
        _add_decided(cs, desired, out, start)
    status: dict[str, Any] = {
        "phase": cs.phase.value,
        "autoscalerRetries": cs.retries,
        "observedGeneration": cs.generation,
        "workers": workers,
        "desiredWorkers": desired,
        "conditions": [
            _condition("HeadPodReady", head_ready,
                       "HeadPodRunning" if head_ready else "HeadPodNotRunning", head_since,
                       cs.generation),
            _condition("SpecValid", not cs.problems,
                       (cs.error_reason or "InvalidSpec") if cs.problems else "Validated",
                       cs.spec_valid_since,
                       cs.generation, cs.problems),
        ],
    }
    if sig.manager:
        status["managedBy"] = sig.manager
        status["conditions"].append(_condition(
            "OwnershipConflict", bool(sig.conflict),
            "OtherInstallsCover" if sig.conflict else "NoConflict", cs.claim_since,
            cs.generation, sig.conflict))
    if sig.service_conflict:
        status["conditions"].append(_condition(
            "ServiceConflict", True, "NotOwnedByThisCluster", cs.service_conflict_since,
            cs.generation, sig.service_conflict))
    if cs.spec is not None:
        feasible, met = not note.infeasible, not note.held_reason
        last = sent.signature if sent is not None else None
        since = cs.feasible_since if last is not None and cs.feasible_since \
            and (not last.infeasible) == feasible else now
        status["conditions"].append(_condition(
            "DemandFeasible", feasible, "AllFit" if feasible else "NoPodTypeFits", since,
            cs.generation, note.infeasible))
        since = cs.met_since if last is not None and cs.met_since \
            and (not last.held_reason) == met else now
        status["conditions"].append(_condition(
            "DemandMet", met, note.held_reason or "NothingWaits", since, cs.generation,
            note.held))
        status["pendingDemand"] = demand.pending_demand(note)
    if cs.problems:
        status["message"] = cs.problems
    return status


def _add_decided(cs: ClusterState, desired: dict[str, int], out: list[act.Action],
                 start: int) -> None:
    """Count the creates and deletes of workers planned since `start` into `desired`."""
    dead = ev.DEAD_PHASES
    going = cs.draining or cs.drained
    for i in range(start, len(out)):
        action = out[i]
        kind = type(action)
        if kind is act.CreatePod and action.role == ev.WORKER:  # type: ignore[union-attr]
            pod_type = action.pod_type  # type: ignore[union-attr]
            desired[pod_type] = desired.get(pod_type, 0) + 1
        elif kind is act.DeletePod or kind is act.DrainNode:
            name = action.name  # type: ignore[union-attr]
            pod = cs.pods.get(name)
            if (pod is None or pod.role != ev.WORKER or pod.terminating
                    or pod.phase in dead or name in cs.deleting):
                continue
            if going and (name in cs.draining or name in cs.drained):
                continue  # counted as going already (`desired_workers`)
            if desired.get(pod.pod_type, 0) > 0:
                desired[pod.pod_type] -= 1


def _condition(kind: str, ok: bool, reason: str, since: float, generation: int,
               message: str = "") -> dict[str, Any]:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": timestamp(since),
        "observedGeneration": generation,
    }


@functools.lru_cache(maxsize=4096)
def timestamp(seconds: float) -> str:
    """RFC 3339 UTC time of `seconds` since the epoch (pure; no clock is read). Memoized:
    a cluster's conditions repeat the same few transition times in every status."""
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_sent(cs: ClusterState, status: Mapping[str, Any], now: float,
                sig: Signature | None = None, note: Any = None) -> None:
    old = cs.status_sent
    if sig is None:
        sig = signature_of(status)
    if old is None or old.signature.head_ready != sig.head_ready:
        cs.head_ready_since = now
    if old is None or not cs.feasible_since or (not old.signature.infeasible) != (
            not sig.infeasible):
        cs.feasible_since = now
    if old is None or not cs.met_since or (not old.signature.held_reason) != (
            not sig.held_reason):
        cs.met_since = now
    cs.status_sent = Sent(sig, dict(cs.live), note)
    cs.status_sent_at = now


def record_status(state: State, cs: ClusterState, action: Any, now: float,
                  moved: dict[ev.ClusterKey, None]) -> None:
    record_sent(cs, action.status, now, action.signature, action.demand)
