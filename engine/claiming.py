"""Claiming: which install acts on which cluster (claims), and its right to act (leases).

A small machine of its own: it folds the claim annotations and the Lease objects it sees
(this install's, its peers', a newer process's of this install), decides what to write
(a claim, a hand-over, a renewal) and records what it wrote. `may_act` is the one question
the rest of the engine asks it. The claim format and the verdicts are in `engine.claims`.
"""

from __future__ import annotations

import math
from typing import Any

from engine import actions as act
from engine import claims
from engine import events as ev
from engine import lifecycle as lc
from engine.records import RETRY_AFTER_FAILURE, ClusterState, Peer, Rival, State

NO_CLUSTER: ev.ClusterKey = ("", "")
"""The key of actions about the install rather than a cluster (lease timers, its logs)."""


def read_claim(state: State, cs: ClusterState, event: ev.ClusterSeen) -> None:
    meta = event.obj.get("metadata") or {}
    cs.claim_rv = str(meta.get("resourceVersion") or "")
    try:
        claim = claims.parse(event.obj)
    except claims.BadClaim:  # garbled: treated as unclaimed, so the next claim replaces it
        claim = None
    if claim != cs.claim:
        if claim is None or cs.claim is None or claim.install != cs.claim.install:
            cs.claim_since = event.at
        cs.claim = claim
        lc.mark(state, cs.key)


def lease_seen(state: State, event: ev.LeaseSeen) -> None:
    if state.install is not None and event.install == state.install.name:
        # Our own lease: its renewals are known from their results, unless a newer process
        # of this install renewed it (one name, one actor).
        if claims.newer(event.instance, state.install.instance):
            _rival_seen(state, event)
        return
    key = (event.namespace, event.install)
    peer = state.peers.get(key)
    if peer is None or peer.gone:
        state.peers[key] = Peer(renewed=event.renewed, observed_at=event.at,
                                seconds=event.seconds)
        mark_namespace(state, event.namespace)
    elif peer.renewed != event.renewed:
        peer.renewed = event.renewed
        peer.observed_at = event.at
        peer.seconds = event.seconds

def _rival_seen(state: State, event: ev.LeaseSeen) -> None:
    ns = event.namespace
    rival = state.rivals.get(ns)
    if rival is None or event.instance > rival.instance:
        state.rivals[ns] = Rival(instance=event.instance, renewed=event.renewed,
                                 observed_at=event.at, seconds=event.seconds)
        mark_namespace(state, ns)  # stand down there at once
        state.lease_due = min(state.lease_due, event.at)
    elif event.instance == rival.instance and event.renewed != rival.renewed:
        rival.renewed = event.renewed
        rival.observed_at = event.at
        rival.seconds = event.seconds


def lease_gone(state: State, event: ev.LeaseGone) -> None:
    if state.install is not None and event.install == state.install.name:
        if state.rivals.pop(event.namespace, None) is not None:  # the newer one left
            state.faults.append(f"resuming in namespace {event.namespace}: the newer "
                                f"process of {event.install} released its lease")
            state.dirty[("", "")] = None
            own = state.own_leases.get(event.namespace)
            if own is not None:  # renewed at once: others saw the lease go
                own.due = min(own.due, event.at)
            state.lease_due = min(state.lease_due, event.at)
            mark_namespace(state, event.namespace)
        return
    peer = state.peers.get((event.namespace, event.install))
    if peer is None:
        state.peers[(event.namespace, event.install)] = Peer(
            renewed="", observed_at=-math.inf, seconds=0.0, gone=True)
    else:
        peer.gone = True
    mark_namespace(state, event.namespace)


def lease_result(state: State, namespace: str, event: ev.ActionResult) -> None:
    own = state.own_leases.get(namespace)
    if own is None or not own.inflight or state.install is None:
        return
    own.inflight = False
    if event.outcome == ev.DONE:
        fresh = own.renewed_at + state.install.fence_seconds > own.issued_at
        own.renewed_at = own.issued_at
        own.due = own.issued_at + state.install.renew_seconds
        if not fresh:  # this install may act in `namespace` again: plan its clusters
            mark_namespace(state, namespace)
    else:  # retried after RETRY_AFTER_FAILURE: planning the leases now announces when
        own.due = event.at + RETRY_AFTER_FAILURE
        state.lease_due = event.at
        return
    state.lease_due = next_lease_due(state)


def claim_result(
    state: State, cs: ClusterState, name: str, ok: bool, event: ev.ActionResult
) -> None:
    cs.claim_inflight = False
    if event.outcome == ev.REJECTED:  # not written again until the object changes
        cs.claim_refused = cs.claim_rv
        cs.claim_writing = None
        lc.notice(state, cs, "ClaimRejected",
                  f"the API server refused this install's claim on the cluster: {event.reason}")
        return
    if not ok or event.outcome == ev.CONFLICT:  # the watch brings the claim that won
        cs.asked_at = cs.contended_at = -math.inf  # not written: may be tried again
        lc.retry_later(state, cs, event.at)
    elif cs.claim_writing is not None:
        cs.claim_confirmed, cs.claim_replaced = cs.claim_writing
        lc.mark(state, cs.key)  # the claim seen may be the one just confirmed: act on it
    cs.claim_writing = None

def next_lease_due(state: State) -> float:
    """When the next renewal of this install's leases is due (none in flight counted; where
    a newer process of this install acts, when its lease would lapse)."""
    due = math.inf
    rivals = state.rivals
    for ns, own in state.own_leases.items():
        if own.inflight or not state.namespaces.get(ns):
            continue
        at = own.due
        rival = rivals.get(ns) if rivals else None
        if rival is not None:
            at = max(at, rival.until)
        due = min(due, at)
    return due

def mark_namespace(state: State, namespace: str) -> None:
    for key in state.clusters:
        if key[0] == namespace:
            state.dirty[key] = None

def lease_fresh(state: State, namespace: str, now: float) -> bool:
    """Whether this install's own lease in `namespace` lets it act now (the fence), and no
    newer process of this install acts there."""
    if state.install is None:
        return True
    own = state.own_leases.get(namespace)
    if state.rivals and rival_alive(state, namespace, now):
        return False
    return own is not None and now < own.renewed_at + state.install.fence_seconds

def rival_alive(state: State, namespace: str, now: float) -> bool:
    """Whether a newer process of this install is alive in `namespace` (we stand down)."""
    rival = state.rivals.get(namespace)
    return rival is not None and now < rival.until

def alive_until(state: State, cs: ClusterState, install: str) -> float:
    """Until when `install` counts as alive in `cs`'s namespace, by this install's clock.
    A lease never seen there gives the install one lease duration from when its claim was
    first seen (its lease may simply not have arrived yet); a deleted one, nothing.
    """
    assert state.install is not None
    peer = state.peers.get((cs.key[0], install))
    if peer is None:
        return cs.claim_since + state.install.lease_seconds
    if peer.gone:
        return -math.inf
    return peer.observed_at + peer.seconds

def may_act(state: State, cs: ClusterState, now: float) -> bool:
    """Whether this install may write to `cs` now: its claim names us, no live narrower
    install asked for it, and our lease there is fresh (the fence the driver checks again
    right before each write)."""
    me = state.install
    if me is None:
        return True
    if not lease_fresh(state, cs.key[0], now) or cs.claim is None:
        return False
    return claims.verdict(me, cs.claim, alive=_alive(state, cs, now),
                          confirmed=cs.claim_confirmed == cs.claim.fence) is claims.Verdict.ACT

def _alive(state: State, cs: ClusterState, now: float) -> dict[str, bool]:
    claim = cs.claim
    if claim is None:
        return {}
    names = {claim.install, *claim.contenders}
    if claim.handoff is not None:
        names.add(claim.handoff[0])
    return {name: now < alive_until(state, cs, name) for name in names}


def claim_verdict(state: State, me: claims.Install, cs: ClusterState, now: float,
                  out: list[act.Action]) -> tuple[bool, str]:
    """Act on the claim of `cs`: return whether this install acts on it now, and the
    conflict to show in its status ("" for none)."""
    if not lease_fresh(state, cs.key[0], now):
        return False, ""
    claim = cs.claim
    alive = _alive(state, cs, now)
    verdict = claims.verdict(me, claim, alive=alive,
                             confirmed=claim is not None and cs.claim_confirmed == claim.fence)
    if cs.claim_inflight:  # a claim write pending: wait for its result
        return verdict is claims.Verdict.ACT, ""
    if verdict is claims.Verdict.ACT:
        assert claim is not None
        dead = {name for name, ok in alive.items() if not ok}
        if dead & {*claim.contenders, *(claim.handoff[:1] if claim.handoff else ())}:
            _write_claim(cs, claims.without(claim, dead), "prune", out)
        live = sorted(n for n in claim.contenders if alive.get(n))
        if not live:
            return True, ""
        expiry = min(alive_until(state, cs, n) for n in live)
        out.append(act.Requeue(cluster=cs.key, at=expiry))
        return True, (f"installs {', '.join(live)} also cover this cluster; {me.name} "
                      f"manages it (narrowest scope first, then the older claim)")
    if verdict is claims.Verdict.CLAIM:
        if _confirmed_unseen(cs):
            return False, ""  # our claim was written: wait for the watch to show it
        new = claims.claimed_by(me, claim)
        _write_claim(cs, new, "claim", out)
        out.append(act.Log(cluster=cs.key, level="INFO",
                           message=f"claiming the cluster for {me.name} (epoch {new.epoch})"))
        return False, ""
    assert claim is not None
    holder_expiry = alive_until(state, cs, claim.install)
    if verdict is claims.Verdict.HAND_OFF:
        new = claims.handed_to(claim)
        _write_claim(cs, new, "hand-off", out)
        message = (f"handing the cluster over to {new.install}, whose scope is narrower "
                   f"(epoch {new.epoch})")
        lc.tell(cs, "Normal", "OwnershipHandedOver", "INFO", message, out)
        return False, ""
    out.append(act.Requeue(cluster=cs.key, at=holder_expiry))
    # Asking and contending are repeated at most once per lease period: if the holder drops
    # the entry (it saw this install's lease expire), writing it back at once could go on
    # for as long as the two disagree about that lease.
    if verdict is claims.Verdict.ASK and now >= cs.asked_at + me.lease_seconds:
        _write_claim(cs, claims.asked_by(me, claim), "ask", out)
        out.append(act.Log(cluster=cs.key, level="INFO",
                           message=f"asking {claim.install} to hand the cluster over: "
                                   f"{me.name} has the narrower scope"))
    elif verdict is claims.Verdict.LOSE and me.name not in claim.contenders and (
            now >= cs.contended_at + me.lease_seconds):
        _write_claim(cs, claims.contended_by(me, claim), "contend", out)
        if cs.contended != claim.install:
            message = (f"{claim.install} manages this cluster and its scope is as narrow or "
                       f"narrower, or its claim is older: {me.name} will not act on it")
            lc.tell(cs, "Warning", "OwnershipConflict", "WARNING", message, out)
    return False, ""


def _confirmed_unseen(cs: ClusterState) -> bool:
    """Whether the watch still shows the version of the cluster that this process's last
    confirmed claim write replaced (writing again now could only meet 409)."""
    return bool(cs.claim_replaced) and cs.claim_rv == cs.claim_replaced


def _write_claim(cs: ClusterState, claim: claims.Claim, reason: str,
                 out: list[act.Action]) -> None:
    if cs.claim_refused and cs.claim_refused == cs.claim_rv:
        return  # the API refused a claim on this version of the object: wait for another
    out.append(act.WriteClaim(cluster=cs.key, claim=claim.encode(), resource_version=cs.claim_rv,
                              reason=reason))

def plan_leases(state: State, now: float, out: list[act.Action]) -> None:
    """Renew this install's lease in every namespace where it sees clusters, when due."""
    me = state.install
    assert me is not None
    due = math.inf
    for ns, own in sorted(state.own_leases.items()):
        if own.inflight or not state.namespaces.get(ns):
            continue
        rival = state.rivals.get(ns) if state.rivals else None
        if rival is not None:
            if now < rival.until:
                if not rival.told:
                    out.append(act.Log(cluster=NO_CLUSTER, level="WARNING", message=(
                        f"another process of install {me.name} (instance {rival.instance}, "
                        f"newer than this one, {me.instance}) renews its lease in namespace "
                        f"{ns}: this process stands down there until that lease lapses")))
                due = min(due, rival.until)
                continue
            out.append(act.Log(cluster=NO_CLUSTER, level="INFO", message=(
                f"resuming in namespace {ns}: the lease of instance {rival.instance} of "
                f"{me.name} lapsed")))
        if now >= own.due:
            out.append(act.RenewLease(namespace=ns, install=me.name, seconds=me.lease_seconds,
                                      rank=me.rank, instance=me.instance))
            due = min(due, now + me.renew_seconds)
        else:
            due = min(due, own.due)
    if due < math.inf:
        out.append(act.Requeue(cluster=NO_CLUSTER, at=due))


def record_rivals(state: State, now: float) -> None:
    """What `plan_leases` just told of newer processes of this install: a live one was
    told (not again), a lapsed one is forgotten."""
    for ns, rival in list(state.rivals.items()):
        own = state.own_leases.get(ns)
        if own is None or own.inflight or not state.namespaces.get(ns):
            continue
        if now < rival.until:
            rival.told = True
        else:
            del state.rivals[ns]

def record_claim(state: State, cs: ClusterState, action: Any, now: float,
                 moved: dict[ev.ClusterKey, None]) -> None:
    cs.claim_inflight = True
    fence = action.fence
    mine = state.install is not None and fence.rpartition("/")[0] == state.install.name
    cs.claim_writing = (fence, action.resource_version) if mine else None
    if action.reason == "contend" and cs.claim is not None:
        cs.contended = cs.claim.install
        cs.contended_at = now
    elif action.reason == "ask":
        cs.asked_at = now

def record_lease(state: State, action: act.RenewLease, now: float) -> None:
    own = state.own_leases[action.namespace]
    own.inflight = True
    own.issued_at = now
