"""The RBAC declaration (driver/permissions.py) is exactly what the operator uses."""

from __future__ import annotations

from adapters.leader import Elector
from driver import permissions
from sim import cli
from sim.api import Api, Client
from sim.scenario import load
from sim.world import World


def calls_of_every_scenario() -> set[tuple[str, str]]:
    """What the simulated operators call in every bundled scenario, and what leader election
    calls (replicas of one install taking turns)."""
    used: set[tuple[str, str]] = set()
    election = Client(Api())
    a, b = (Elector(election, namespace="ops", install="x", identity=i) for i in "ab")
    a.try_acquire_or_renew()
    a.try_acquire_or_renew()
    b.try_acquire_or_renew()
    a.release()
    used.update(tuple(k.split(" ", 1)) for k in election.calls)  # type: ignore[misc]
    for path in cli.bundled().values():
        world = World(scenario=load(path))
        world.run()
        for client in world.clients:
            for key in client.calls:
                verb, resource = key.split(" ", 1)
                used.add((verb, resource))
    return used


def test_every_call_is_declared_and_every_declared_verb_is_used() -> None:
    used = calls_of_every_scenario()
    undeclared = sorted(c for c in used if not permissions.allows(*c))
    assert undeclared == []
    for rule in permissions.RULES:
        if not rule.call:
            continue  # required by admission for a call, not a call itself
        for verb in rule.verbs:
            if verb == "watch":  # the driver watches what it lists
                assert "list" in rule.verbs
                continue
            resource, _, sub = rule.resource.partition("/")
            sim_verb = "patch_status" if sub == "status" else verb
            assert (sim_verb, resource) in used, f"{verb} {rule.resource} is never used"


def test_no_exec_and_no_wildcards() -> None:
    rules = permissions.policy_rules()
    assert all("*" not in r["verbs"] and "*" not in r["resources"] for r in rules)
    assert not any("pods/exec" in r["resources"] for r in rules)
