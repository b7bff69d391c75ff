"""Leader election among replicas of one install (adapters/leader.py), on the simulated API."""

from __future__ import annotations

from adapters.leader import Elector
from sim.api import Api, Client


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replicas(n: int) -> tuple[Clock, list[Elector]]:
    api, clock = Api(), Clock()
    api.create("namespaces", "", {"metadata": {"name": "ops"}})
    return clock, [Elector(Client(api), namespace="ops", install="ray-operator",
                           identity=f"pod-{i}", clock=clock, wall=clock) for i in range(n)]


def test_one_replica_leads_and_the_others_wait() -> None:
    clock, (a, b, c) = replicas(3)
    assert a.try_acquire_or_renew()
    for _ in range(20):  # the leader renews every 2 s; nobody else ever gets it
        clock.now += 2.0
        assert a.try_acquire_or_renew()
        assert not b.try_acquire_or_renew() and not c.try_acquire_or_renew()


def test_a_silent_leader_is_replaced_only_after_the_lease_duration() -> None:
    clock, (a, b) = replicas(2)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()  # b sees the lease now
    clock.now += 10.0
    assert not a.leading  # past its renew deadline: a has stepped down by itself ...
    assert not b.try_acquire_or_renew()  # ... before b may take over (15 s unchanged)
    clock.now += 5.0
    assert b.try_acquire_or_renew()
    assert not a.try_acquire_or_renew()  # a comes back: b holds a fresh lease


def test_release_hands_over_at_once() -> None:
    _, (a, b) = replicas(2)
    assert a.try_acquire_or_renew()
    assert not b.try_acquire_or_renew()
    a.release()
    assert not a.leading
    assert b.try_acquire_or_renew()
    lease = b.api.get("leases", "ops", "ray-operator-ray-operator-leader")
    assert lease["spec"]["holderIdentity"] == "pod-1" and lease["spec"]["leaseTransitions"] == 1
