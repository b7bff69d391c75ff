"""This install's leases: renewed in every namespace where it sees clusters, and only there."""

from __future__ import annotations

from typing import Any

from engine import actions as act
from engine import events as ev
from engine import planner
from engine import state as stmod
from engine.claims import Install
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
    assert stmod.lease_fresh(state, "ray", 7.0)
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
