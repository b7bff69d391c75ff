"""One contract, three backends: the simulator's in-process API, `sim serve` over HTTP and a
real kube-apiserver.

The same tests of Kubernetes API semantics run against `sim.api.Client` (what the simulated
operators use) and `adapters.kube.KubeApi` (what the `ray-operator` process uses, on the
official `kubernetes` client) talking to `python -m sim serve` and to a real API server, as
eventsourcing runs one recorder test suite against each of its backends. The real server is
the reference: where a fake answers differently, the fake is wrong.
"""

from __future__ import annotations

from typing import Any

import pytest

from driver.execute import ApiError, Precondition, kubernetes_event
from engine.actions import EmitEvent
from sim.clusters import cluster_object


def service(name: str, **labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "labels": labels}, "spec": {"ports": [{"port": 80}]}}


def raycluster(name: str) -> dict[str, Any]:
    obj = cluster_object("", name, 0, 1)
    obj["metadata"] = {"name": name, "annotations": {"cluster.ray.io/claim-holder": "a/1"}}
    return obj


def test_create_returns_the_stored_object_and_a_taken_name_is_409(api: Any) -> None:
    created = api.create("services", "c1", service("s1"))
    assert created["metadata"]["uid"] and created["metadata"]["resourceVersion"]
    assert api.get("services", "c1", "s1")["metadata"]["uid"] == created["metadata"]["uid"]
    with pytest.raises(ApiError) as exc:
        api.create("services", "c1", service("s1"))
    assert exc.value.status == 409


def test_a_missing_object_is_404(api: Any) -> None:
    with pytest.raises(ApiError) as exc:
        api.get("services", "c2", "nope")
    assert exc.value.status == 404


def test_delete_honours_the_uid_precondition(api: Any) -> None:
    uid = api.create("services", "c3", service("s3"))["metadata"]["uid"]
    with pytest.raises(ApiError) as exc:
        api.delete("services", "c3", "s3", uid="someone-else")
    assert exc.value.status == 409
    api.delete("services", "c3", "s3", uid=uid)
    with pytest.raises(ApiError):
        api.get("services", "c3", "s3")


def test_merge_patch_and_a_stale_resource_version(api: Any) -> None:
    old = api.create("services", "c4", service("s4"))
    new = api.patch("services", "c4", "s4", {"metadata": {"labels": {"a": "b"}}})
    assert new["metadata"]["labels"] == {"a": "b"}
    assert int(new["metadata"]["resourceVersion"]) > int(old["metadata"]["resourceVersion"])
    with pytest.raises(ApiError) as exc:
        api.patch("services", "c4", "s4", {"metadata": {
            "resourceVersion": old["metadata"]["resourceVersion"], "labels": {"a": "c"}}})
    assert exc.value.status == 409


def test_list_by_label_selector(api: Any) -> None:
    api.create("services", "c5", service("x", app="ray"))
    api.create("services", "c5", service("y", app="other"))
    items, version = api.list("services", "c5", "app=ray")
    assert [i["metadata"]["name"] for i in items] == ["x"] and version


def test_status_writes_are_fenced_by_uid_and_annotation(api: Any) -> None:
    uid = api.create("rayclusters", "c6", raycluster("rc"))["metadata"]["uid"]
    fence = Precondition(uid=uid, annotations={"cluster.ray.io/claim-holder": "a/1"})
    written = api.patch_status("rayclusters", "c6", "rc", {"phase": "Running"},
                               precondition=fence)
    assert written["status"]["phase"] == "Running"
    assert written["metadata"]["generation"] == 1  # status is not spec
    stale = Precondition(uid=uid, annotations={"cluster.ray.io/claim-holder": "b/2"})
    with pytest.raises(ApiError) as exc:
        api.patch_status("rayclusters", "c6", "rc", {"phase": "Error"}, precondition=stale)
    assert exc.value.status == 409
    with pytest.raises(ApiError):
        api.patch_status("rayclusters", "c6", "rc", {"phase": "Error"},
                         precondition=Precondition(uid="other"))
    assert api.get("rayclusters", "c6", "rc")["status"]["phase"] == "Running"


def test_a_raycluster_that_breaks_the_schema_is_refused_naming_the_field(api: Any) -> None:
    bad = raycluster("bad")
    bad["spec"]["podTypes"][1]["minWorkers"] = -1
    del bad["spec"]["headPodType"]
    with pytest.raises(ApiError) as exc:
        api.create("rayclusters", "c7", bad)
    assert exc.value.status == 422
    assert "spec.headPodType: Required value" in str(exc.value)
    assert "spec.podTypes[1].minWorkers" in str(exc.value)


def test_unknown_fields_of_a_raycluster_are_pruned(api: Any) -> None:
    obj = raycluster("pruned")
    obj["spec"]["headSetupCommands"] = ["echo"]
    obj["spec"]["podTypes"][0]["podConfig"]["spec"]["kept"] = True  # preserved: podConfig
    stored = api.create("rayclusters", "c7", obj)
    assert "headSetupCommands" not in stored["spec"]
    assert stored["spec"]["podTypes"][0]["podConfig"]["spec"]["kept"] is True


def test_a_missing_object_is_named_as_the_server_names_it(api: Any) -> None:
    with pytest.raises(ApiError) as exc:
        api.get("rayclusters", "c1", "nope")
    assert exc.value.message == 'rayclusters.cluster.ray.io "nope" not found'


def test_nothing_is_created_in_a_namespace_that_does_not_exist(api: Any) -> None:
    with pytest.raises(ApiError) as exc:
        api.create("services", "no-such-namespace", service("s"))
    assert exc.value.status == 404
    assert exc.value.message == 'namespaces "no-such-namespace" not found'


def test_events_are_listed_by_the_object_they_are_about(api: Any) -> None:
    for name in ("a", "b", "a"):
        api.create("events", "c7", kubernetes_event(
            EmitEvent(cluster=("c7", name), type="Normal", reason="Tested",
                      message=f"about {name}"),
            "2026-01-01T00:00:00Z"))
    about_a, _ = api.list("events", "c7", fields="involvedObject.name=a")
    assert [e["message"] for e in about_a] == ["about a", "about a"]
    not_a, _ = api.list("events", "c7", fields="involvedObject.name!=a,involvedObject.kind"
                                                "=RayCluster")
    assert [e["message"] for e in not_a] == ["about b"]
    with pytest.raises(ApiError) as exc:
        api.list("events", "c7", fields="spec.nothing=1")
    assert exc.value.status == 400
