"""One cluster's faults and refusals stay with that cluster.

Whatever goes wrong while folding or planning for a RayCluster (an unexpected exception
included) puts that cluster in phase Error naming it, with a Warning Event; the other
clusters decide exactly what they would decide alone. An API answer that no retry can fix
is not retried in a loop.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine import actions as act
from engine import events as ev
from engine import manifests
from engine import spec as specs
from engine.phases import Phase
from tests.builders import raycluster, set_workers
from tests.engine.world import World

BAD = ("ray", "bad")
GOOD = ("ray", "good")


def healthy_alone() -> list[act.Action]:
    world = World()
    world.apply_cluster(raycluster("good"))
    world.settle()
    world.advance(30)
    return [a for a in world.actions if a.cluster == GOOD]


def beside_a_bad_one(bad: dict[str, Any]) -> World:
    world = World()
    world.apply_cluster(bad)
    world.apply_cluster(raycluster("good"))
    world.settle()
    world.advance(30)
    return world


def status(world: World, key: ev.ClusterKey) -> dict[str, Any]:
    return world.status[key]


def warnings(world: World, key: ev.ClusterKey) -> list[act.EmitEvent]:
    return [a for a in world.actions
            if isinstance(a, act.EmitEvent) and a.cluster == key and a.type == "Warning"]


@pytest.mark.patches_engine
def test_a_fault_while_planning_one_cluster_leaves_the_other_as_it_is_alone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    alone = healthy_alone()
    real = manifests.template

    def template(spec: specs.ClusterSpec, *args: Any, **kwargs: Any) -> manifests.PodTemplate:
        if spec.name == "bad":
            raise ValueError("a shape nobody checked")
        return real(spec, *args, **kwargs)
    monkeypatch.setattr(manifests, "template", template)
    world = beside_a_bad_one(raycluster("bad"))
    assert [a for a in world.actions if a.cluster == GOOD] == alone
    assert status(world, BAD)["phase"] == "Error"
    assert "while planning" in status(world, BAD)["message"]
    assert "ValueError: a shape nobody checked" in status(world, BAD)["message"]
    assert [w.reason for w in warnings(world, BAD)] == ["InternalError"]
    assert not any(isinstance(a, act.CreatePod) for a in world.actions if a.cluster == BAD)


@pytest.mark.patches_engine
def test_a_fault_while_reading_a_cluster_is_its_error_until_a_new_generation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    real = specs.from_raycluster

    def from_raycluster(obj: Any, **kwargs: Any) -> specs.ClusterSpec:
        if obj["metadata"]["name"] == "bad":
            raise RecursionError("maximum recursion depth exceeded")
        return real(obj, **kwargs)
    monkeypatch.setattr(specs, "from_raycluster", from_raycluster)
    world = beside_a_bad_one(raycluster("bad"))
    assert status(world, BAD)["phase"] == "Error"
    assert status(world, BAD)["message"].startswith("the RayCluster could not be read: "
                                                    "RecursionError")
    monkeypatch.setattr(specs, "from_raycluster", real)
    world.apply_cluster(set_workers(raycluster("bad"), min_workers=1))
    world.settle()
    world.advance(30)
    assert world.state.clusters[BAD].phase is Phase.RUNNING
    assert world.live(BAD) == 1


def test_a_pod_the_api_refuses_puts_its_cluster_in_error_once_and_for_that_generation() -> None:
    refusal = "422 Invalid: Pod is invalid: spec.volumes[0].name: Invalid value"

    def answer(action: act.Action) -> tuple[str, str] | None:
        if isinstance(action, act.CreatePod) and action.cluster == BAD:
            return ev.REJECTED, refusal
        return None
    world = World(answer=answer)
    world.apply_cluster(raycluster("bad"))
    world.apply_cluster(raycluster("good"))
    world.settle()
    world.advance(600)
    creates = [a for a in world.actions if isinstance(a, act.CreatePod) and a.cluster == BAD]
    assert len(creates) == 1  # the head, refused: never sent again in ten minutes
    assert status(world, BAD)["phase"] == "Error"
    assert refusal in status(world, BAD)["message"]
    assert [w.reason for w in warnings(world, BAD)] == ["RejectedByApiServer"]
    assert world.state.clusters[GOOD].phase is Phase.RUNNING
    world.answer = lambda action: None  # the user fixes the spec: a new generation
    world.apply_cluster(set_workers(raycluster("bad"), min_workers=2))
    world.settle()
    world.advance(30)
    assert status(world, BAD)["phase"] == "Running"


def test_a_forbidden_call_is_told_once_and_retried_with_backoff_not_in_a_loop() -> None:
    def answer(action: act.Action) -> tuple[str, str] | None:
        if isinstance(action, act.CreatePod) and action.role == ev.WORKER:
            return ev.FORBIDDEN, '403 Forbidden: exceeded quota: pods'
        return None
    world = World(answer=answer)
    world.apply_cluster(raycluster("good"))
    world.settle()
    world.advance(600)
    creates = [a for a in world.actions if isinstance(a, act.CreatePod)
               and a.role == ev.WORKER]
    assert len(creates) <= 2 * (600 / 60 + 8)  # two workers a try, tries at most a minute apart
    told = [w for w in warnings(world, GOOD) if w.reason == "Forbidden"]
    assert len(told) == 1 and "exceeded quota" in told[0].message


def test_a_head_service_name_taken_by_another_object_is_a_condition_not_a_takeover() -> None:
    taken = "409 Conflict: a Service named good-ray-head exists and is not owned by this " \
            "RayCluster"

    def answer(action: act.Action) -> tuple[str, str] | None:
        return (ev.CONFLICT, taken) if isinstance(action, act.ApplyService) else None
    world = World(answer=answer)
    world.apply_cluster(raycluster("good"))
    world.settle()
    world.advance(150)
    applies = [a for a in world.actions if isinstance(a, act.ApplyService)]
    assert 2 <= len(applies) <= 4  # looked at again every minute, never in a loop
    conditions = {c["type"]: c for c in status(world, GOOD)["conditions"]}
    assert conditions["ServiceConflict"]["status"] == "True"
    assert taken in conditions["ServiceConflict"]["message"]
    assert [w.reason for w in warnings(world, GOOD)] == ["ServiceConflict"]
    assert world.live(GOOD) == 2  # the pods are not held back
    world.answer = lambda action: None  # the other Service is deleted
    world.advance(61)
    assert "ServiceConflict" not in {c["type"] for c in status(world, GOOD)["conditions"]}
