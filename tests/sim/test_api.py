"""The in-memory Kubernetes API behaves as controllers rely on (unlike a thin fake)."""

from __future__ import annotations

import pytest

from driver.execute import ApiError
from sim.api import Api, Client, Fault
from sim.clusters import cluster_object
from sim.selectors import parse_selector


def raycluster(name: str = "a") -> dict[str, object]:
    obj = cluster_object("", name, 0, 1)
    obj["metadata"] = {"name": name}
    return obj


def fresh() -> Api:
    """An API with namespace "ns" (a real API server refuses objects in a missing one)."""
    api = Api()
    api.create("namespaces", "", {"metadata": {"name": "ns"}})
    return api


def test_a_namespace_must_exist_and_is_active() -> None:
    api = Api()
    with pytest.raises(ApiError) as refused:
        api.create("pods", "nope", {"metadata": {"name": "p"}, "spec": {}})
    assert refused.value.status == 404 and 'namespaces "nope" not found' in str(refused.value)
    created = api.create("namespaces", "", {"metadata": {"name": "nope"}})
    assert created["status"] == {"phase": "Active"}
    api.create("pods", "nope", {"metadata": {"name": "p"}, "spec": {}})


def test_create_sets_identity_and_a_growing_resource_version() -> None:
    api = fresh()
    a = api.create("rayclusters", "ns", raycluster("a"))
    b = api.create("rayclusters", "ns", raycluster("b"))
    assert a["metadata"]["uid"] != b["metadata"]["uid"]
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    assert a["metadata"]["generation"] == 1 and a["metadata"]["namespace"] == "ns"


def test_generate_name_and_taken_names() -> None:
    api = fresh()
    pod = api.create("pods", "ns", {"metadata": {"generateName": "p-"}, "spec": {}})
    assert pod["metadata"]["name"].startswith("p-") and pod["status"]["phase"] == "Pending"
    api.create("pods", "ns", {"metadata": {"name": "x"}, "spec": {}})
    with pytest.raises(ApiError) as info:
        api.create("pods", "ns", {"metadata": {"name": "x"}, "spec": {}})
    assert info.value.status == 409


def test_generation_bumps_only_on_spec_changes_and_status_is_a_subresource() -> None:
    api = fresh()
    api.create("rayclusters", "ns", raycluster())
    labelled = api.patch("rayclusters", "ns", "a", {"metadata": {"labels": {"x": "1"}},
                                                    "status": {"phase": "Hacked"}})
    assert labelled["metadata"]["generation"] == 1 and "status" not in labelled
    edited = api.patch("rayclusters", "ns", "a", {"spec": {"maxWorkers": 2}})
    assert edited["metadata"]["generation"] == 2
    status = api.patch_status("rayclusters", "ns", "a", {"phase": "Running"})
    assert status["metadata"]["generation"] == 2 and status["status"] == {"phase": "Running"}


def test_a_stale_resource_version_is_a_conflict() -> None:
    api = fresh()
    old = api.create("rayclusters", "ns", raycluster())
    api.patch("rayclusters", "ns", "a", {"spec": {"maxWorkers": 2}})
    with pytest.raises(ApiError) as info:
        api.replace("rayclusters", "ns", "a", old)
    assert info.value.status == 409


def test_deleting_an_owner_collects_its_dependents() -> None:
    api = fresh()
    owner = api.create("rayclusters", "ns", raycluster())
    ref = {"apiVersion": "cluster.ray.io/v1", "kind": "RayCluster", "name": "a",
           "uid": owner["metadata"]["uid"]}
    api.create("services", "ns", {"metadata": {"name": "s", "ownerReferences": [ref]}})
    api.create("pods", "ns", {"metadata": {"name": "p", "ownerReferences": [ref]}, "spec": {}})
    api.delete("rayclusters", "ns", "a")
    assert api.objects["services"] == {} and api.objects["pods"] == {}


def test_finalizers_hold_a_deletion() -> None:
    api = fresh()
    body = raycluster()
    body["metadata"] = {"name": "a", "finalizers": ["x"]}  # type: ignore[index]
    api.create("rayclusters", "ns", body)
    api.delete("rayclusters", "ns", "a")
    held = api.get("rayclusters", "ns", "a")
    assert held["metadata"]["deletionTimestamp"]
    api.patch("rayclusters", "ns", "a", {"metadata": {"finalizers": None}})
    assert ("ns", "a") not in api.objects["rayclusters"]


@pytest.mark.parametrize(
    ("selector", "labels", "match"),
    [("a=1", {"a": "1"}, True), ("a==1", {"a": "2"}, False), ("a!=1", {}, True),
     ("a", {"a": ""}, True), ("!a", {"a": "x"}, False), ("a in (1, 2)", {"a": "2"}, True),
     ("a notin (1,2),b", {"a": "3", "b": "x"}, True)],
)
def test_label_selectors(selector: str, labels: dict[str, str], match: bool) -> None:
    assert parse_selector(selector)(labels) is match


def test_a_watch_resumed_from_an_expired_version_answers_410() -> None:
    api = fresh()
    api.history_limit = 3
    base = api.rv  # the namespace's creation
    for name in "abcde":
        api.create("rayclusters", "ns", raycluster(name))
    assert [item[0] - base for item in api.events_since(base + 3)] == [4, 5]
    with pytest.raises(ApiError) as info:
        list(api.events_since(1))
    assert info.value.status == 410


def test_an_injected_fault_changes_nothing() -> None:
    api = fresh()
    client, version = Client(api), api.rv
    api.faults.append(Fault(verb="create", resource="pods", status=500, count=1))
    with pytest.raises(ApiError):
        client.create("pods", "ns", {"metadata": {"name": "p"}, "spec": {}})
    assert api.objects["pods"] == {} and api.rv == version
    client.create("pods", "ns", {"metadata": {"name": "p"}, "spec": {}})
    assert ("ns", "p") in api.objects["pods"]


def test_pod_quantities_are_stored_as_strings_as_the_api_server_returns_them() -> None:
    api = fresh()
    spec = {"containers": [{"name": "c", "resources": {"requests": {"cpu": 1, "memory": "1Gi"},
                                                       "limits": {"cpu": 0.5}}}]}
    first = api.create("pods", "ns", {"metadata": {"name": "a"}, "spec": spec})
    second = api.create("pods", "ns", {"metadata": {"name": "b"}, "spec": spec})
    assert first["spec"]["containers"][0]["resources"] == {
        "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "0.5"}}
    assert second["spec"] is first["spec"]  # one template, converted once
    assert spec["containers"][0]["resources"]["requests"]["cpu"] == 1  # the input untouched
