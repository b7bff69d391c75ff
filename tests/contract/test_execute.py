"""The driver's writes on each backend: what it changes, and what it never touches."""

from __future__ import annotations

from typing import Any

from driver import execute
from engine import actions as act
from engine import events as ev
from engine import manifests
from engine import spec as specs
from sim.clusters import cluster_object
from tests.builders import raycluster


def apply_service(api: Any, namespace: str) -> act.ApplyService:
    """The head Service of a RayCluster `db` created in `namespace` now."""
    obj = raycluster("db", namespace)
    del obj["metadata"]["uid"]
    created = api.create("rayclusters", namespace, obj)
    spec = specs.from_raycluster(created)
    return act.ApplyService(cluster=(namespace, "db"), name=spec.service_name,
                            manifest=manifests.service(spec))


def run(api: Any, action: act.Action) -> ev.ActionResult | None:
    return execute.execute(api, action, 0.0, log=print, requeue=print, event_time=str)


def test_a_foreign_service_of_the_head_service_s_name_is_never_patched(api: Any) -> None:
    # A tenant's Service `db-ray-head` (port 5432, no owner) was patched to the head
    # Service's selector and ports: port 5432 vanished, and stayed broken after the
    # RayCluster was deleted.
    api.create("services", "x1", {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": "db-ray-head"},
                                  "spec": {"selector": {"app": "postgres"},
                                           "ports": [{"name": "pg", "port": 5432}]}})
    result = run(api, apply_service(api, "x1"))
    assert result is not None and result.outcome == ev.CONFLICT
    assert "not owned by this RayCluster" in result.reason
    kept = api.get("services", "x1", "db-ray-head")
    assert kept["spec"]["selector"] == {"app": "postgres"}
    assert [p["port"] for p in kept["spec"]["ports"]] == [5432]


def test_the_cluster_s_own_service_is_brought_back_to_its_manifest(api: Any) -> None:
    first = apply_service(api, "x2")
    assert run(api, first) == execute.result(first, 0.0, ev.DONE)
    api.patch("services", "x2", "db-ray-head", {"spec": {"selector": {"drifted": "yes"}}})
    assert run(api, first) == execute.result(first, 0.0, ev.DONE)
    assert api.get("services", "x2", "db-ray-head")["spec"]["selector"] == {
        "cluster.ray.io/component": "db-ray-head"}


def test_a_service_owned_by_another_object_is_a_conflict(api: Any) -> None:
    other = api.create("rayclusters", "x3", cluster_object("x3", "o", 0, 1))
    owner = {"apiVersion": "cluster.ray.io/v1", "kind": "RayCluster", "name": "o",
             "uid": other["metadata"]["uid"]}
    api.create("services", "x3", {"apiVersion": "v1", "kind": "Service",
                                  "metadata": {"name": "db-ray-head",
                                               "ownerReferences": [owner]},
                                  "spec": {"ports": [{"port": 1}]}})
    result = run(api, apply_service(api, "x3"))
    assert result is not None and result.outcome == ev.CONFLICT


def test_answers_no_retry_can_fix_are_rejected_and_403_is_forbidden() -> None:
    assert [execute.outcome_of(s) for s in (400, 403, 409, 413, 415, 422, 500, 0)] == [
        ev.REJECTED, ev.FORBIDDEN, ev.CONFLICT, ev.REJECTED, ev.REJECTED, ev.REJECTED,
        ev.FAILED_OUTCOME, ev.FAILED_OUTCOME]
