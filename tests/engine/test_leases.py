"""This install's leases: renewed in every namespace where it sees clusters, and only there."""

from __future__ import annotations

from typing import Any

import attrs

from engine import actions as act
from engine import claiming, claims, planner
from engine import events as ev
from engine import state as stmod
from engine.claims import Claim, Install
from engine.scopes import EVERYWHERE
from tests.builders import raycluster

ME = Install(name="ray-operator", rank=EVERYWHERE.rank, lease_seconds=15.0, renew_seconds=5.0)


def seen(obj: dict[str, Any], at: float) -> ev.ClusterSeen:
    meta = obj["metadata"]
    return ev.ClusterSeen(cluster=(meta["namespace"], meta["name"]), at=at, uid=meta["uid"],
                          generation=meta["generation"], obj=obj)


def renewals(actions: tuple[act.Action, ...]) -> list[str]:
    return [a.namespace for a in actions if isinstance(a, act.RenewLease)]


def renewed(state: stmod.State, namespace: str, at: float) -> stmod.State:
    result = ev.ActionResult(cluster=(namespace, ""), at=at, action=f"RenewLease/{namespace}",
                             outcome=ev.DONE)
    return planner.step(state, result)[0]


def test_renewals_resume_when_an_emptied_namespace_gets_a_cluster_again() -> None:
    """Found by the stateful test: a cluster deleted and applied again after its
    namespace's renewal came due was never acted on (its lease had lapsed for good)."""
    state = stmod.initial(synced=True, install=ME)
    state, actions = planner.step(state, seen(raycluster("alpha"), 0.0))
    assert renewals(actions) == ["ray"]
    state = renewed(state, "ray", 0.0)
    state, _ = planner.step(state, ev.ClusterDeleted(cluster=("ray", "alpha"), at=1.0))
    state, actions = planner.step(state, ev.Tick(at=6.0))  # due, but "ray" has no cluster
    assert renewals(actions) == []
    state, actions = planner.step(state, seen(raycluster("alpha", uid="uid-2"), 7.0))
    assert renewals(actions) == ["ray"]
    state = renewed(state, "ray", 7.0)
    assert claiming.lease_fresh(state, "ray", 7.0)
    assert state.lease_due == 12.0


def test_no_renewal_in_a_namespace_without_clusters() -> None:
    state = stmod.initial(synced=True, install=ME)
    state, _ = planner.step(state, seen(raycluster("alpha", namespace="team-a"), 0.0))
    state = renewed(state, "team-a", 0.0)
    state, _ = planner.step(state, ev.ClusterDeleted(cluster=("team-a", "alpha"), at=1.0))
    for t in (6.0, 20.0, 60.0):
        state, actions = planner.step(state, ev.Tick(at=t))
        assert renewals(actions) == []


def test_a_failed_renewal_is_retried_after_a_second() -> None:
    state = stmod.initial(synced=True, install=ME)
    state, _ = planner.step(state, seen(raycluster("alpha"), 0.0))
    failed = ev.ActionResult(cluster=("ray", ""), at=0.5, action="RenewLease/ray",
                             outcome=ev.FAILED_OUTCOME, reason="500 InternalError")
    state, actions = planner.step(state, failed)
    assert act.Requeue(cluster=("", ""), at=1.5) in actions  # the driver ticks then
    state, actions = planner.step(state, ev.Tick(at=1.5))
    assert renewals(actions) == ["ray"]


def claimed(install: str, epoch: int, rv: str) -> dict[str, Any]:
    obj = raycluster("alpha")
    obj["metadata"]["resourceVersion"] = rv
    obj["metadata"]["annotations"] = {
        claims.ANNOTATION: Claim(install=install, epoch=epoch, rank=ME.rank).encode()}
    return obj


def restarted(epoch: int) -> tuple[stmod.State, tuple[act.Action, ...]]:
    """A fresh process of install ME that finds the claim its previous run wrote."""
    state = stmod.initial(synced=True, install=ME)
    state, _ = planner.step(state, seen(claimed(ME.name, epoch, "7"), 0.0))
    return planner.step(state, ev.ActionResult(
        cluster=("ray", ""), at=0.0, action="RenewLease/ray", outcome=ev.DONE))


def writes(actions: tuple[act.Action, ...]) -> list[act.Action]:
    return [a for a in actions if isinstance(a, (*act.EFFECTS, act.WriteClaim))]


def test_a_restarted_install_writes_its_old_claim_again_before_acting() -> None:
    """Found by a long stateful run: an install restarted with its watches down acted on
    the claim its previous run had written, while another install had taken the cluster
    over (this one's lease had lapsed meanwhile): a Service patch from an install the claim
    no longer named. The claim is now written again first (next epoch, resourceVersion
    precondition), and nothing else is written before that write is confirmed."""
    state, actions = restarted(3)
    (write,) = writes(actions)
    assert isinstance(write, act.WriteClaim)
    assert write.fence == f"{ME.name}/4" and write.resource_version == "7"
    state, actions = planner.step(state, ev.ActionResult(
        cluster=("ray", "alpha"), at=0.5, action="WriteClaim/claim", outcome=ev.DONE))
    assert writes(actions) == []  # the watch has not shown the new claim yet
    state, actions = planner.step(state, seen(claimed(ME.name, 4, "8"), 0.6))
    assert any(isinstance(a, act.ApplyService) for a in actions)


def test_a_restarted_install_that_lost_its_claim_meanwhile_never_acts() -> None:
    state, _ = restarted(3)
    state, actions = planner.step(state, ev.ActionResult(
        cluster=("ray", "alpha"), at=0.5, action="WriteClaim/claim", outcome=ev.CONFLICT))
    assert writes(actions) == []
    state, actions = planner.step(state, seen(claimed("team-only", 4, "8"), 0.6))
    assert not [a for a in actions if isinstance(a, act.EFFECTS)]


OLD = attrs.evolve(ME, instance="2026-01-01T00:00:00.000000Z/host-a/1")
NEW = "2026-01-01T00:05:00.000000Z/host-b/1"


def running_old() -> stmod.State:
    """The older process of install ME, holding the cluster and its lease in "ray"."""
    state = stmod.initial(synced=True, install=OLD)
    state, _ = planner.step(state, seen(claimed(ME.name, 1, "7"), 0.0))
    state = renewed(state, "ray", 0.0)
    state, _ = planner.step(state, ev.ActionResult(
        cluster=("ray", "alpha"), at=0.1, action="WriteClaim/claim", outcome=ev.DONE))
    state, _ = planner.step(state, seen(claimed(ME.name, 2, "8"), 0.2))
    assert claiming.may_act(state, state.clusters[("ray", "alpha")], 0.2)
    return state


def lease(instance: str, renewed_at: str, at: float) -> ev.LeaseSeen:
    return ev.LeaseSeen(namespace="ray", install=ME.name, at=at, renewed=renewed_at,
                        seconds=15.0, instance=instance)


def test_an_older_process_of_the_same_install_stands_down_for_a_newer_one() -> None:
    """Two processes with one --operator-name (no leader election) took the claim from each
    other: 394 hand-overs in 35 s. The older one now stands down where the newer renews."""
    state = running_old()
    state, actions = planner.step(state, lease(NEW, "t1", 1.0))
    assert not claiming.may_act(state, state.clusters[("ray", "alpha")], 1.0)
    assert any(isinstance(a, act.Log) and "stands down" in a.message for a in actions)
    for t in range(2, 30):  # the newer one keeps renewing: nothing written, no renewal
        state, actions = planner.step(state, lease(NEW, f"t{t}", float(t)))
        state, more = planner.step(state, ev.Tick(at=t + 0.5))
        assert writes(actions + more) == [] and renewals(actions + more) == []


def test_the_older_process_resumes_once_the_newer_one_is_gone() -> None:
    state = running_old()
    state, _ = planner.step(state, lease(NEW, "t1", 1.0))
    state, _ = planner.step(state, seen(claimed(ME.name, 3, "9"), 1.5))  # the newer one's
    state, actions = planner.step(state, ev.Tick(at=15.9))
    assert renewals(actions) == []
    state, actions = planner.step(state, ev.Tick(at=16.0))  # its lease lapsed
    assert renewals(actions) == ["ray"]
    assert any(isinstance(a, act.Log) and "resuming" in a.message for a in actions)
    state, actions = planner.step(state, ev.ActionResult(
        cluster=("ray", ""), at=16.0, action="RenewLease/ray", outcome=ev.DONE))
    # The newer one rewrote the claim meanwhile: it is written again before anything else.
    assert [type(a) for a in writes(actions)] == [act.WriteClaim]


def test_a_released_lease_of_the_newer_process_hands_back_at_once() -> None:
    state = running_old()
    state, _ = planner.step(state, lease(NEW, "t1", 1.0))
    state, actions = planner.step(state, ev.LeaseGone(namespace="ray", install=ME.name,
                                                      at=2.0))
    assert renewals(actions) == ["ray"]


def test_a_renewal_by_an_older_process_of_the_install_changes_nothing() -> None:
    newest = attrs.evolve(OLD, instance=NEW)
    state = stmod.initial(synced=True, install=newest)
    state, _ = planner.step(state, seen(claimed(ME.name, 1, "7"), 0.0))
    state = renewed(state, "ray", 0.0)
    state, _ = planner.step(state, lease(OLD.instance, "t1", 1.0))
    assert claiming.lease_fresh(state, "ray", 1.0) and not state.rivals
