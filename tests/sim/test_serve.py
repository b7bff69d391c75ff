"""`python -m sim serve` speaks Kubernetes to the official client (and so to kubectl)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.rest import ApiException

from sim import serve
from sim.clusters import cluster_object

GROUP, VERSION, PLURAL = "cluster.ray.io", "v1", "rayclusters"


@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    world = serve.empty_world(startup_delay=0.2, startup_jitter=0.1)
    for namespace in ("ray", "team-a", "team-b"):  # created first, as on a real cluster
        world.namespace(namespace)
    with serve.in_thread(world) as bound:
        yield bound


@pytest.fixture()
def api(port: int) -> k8s.ApiClient:
    config = k8s.Configuration(host=f"http://127.0.0.1:{port}")
    return k8s.ApiClient(config)


def test_create_get_list_and_409_on_a_taken_name(api: k8s.ApiClient) -> None:
    custom = k8s.CustomObjectsApi(api)
    body = cluster_object("ray", "alpha", 0, 2)
    created: dict[str, Any] = custom.create_namespaced_custom_object(
        GROUP, VERSION, "ray", PLURAL, body)
    assert created["metadata"]["uid"] and created["metadata"]["generation"] == 1
    got = custom.get_namespaced_custom_object(GROUP, VERSION, "ray", PLURAL, "alpha")
    assert got["spec"] == body["spec"]
    listed = custom.list_namespaced_custom_object(GROUP, VERSION, "ray", PLURAL)
    assert [i["metadata"]["name"] for i in listed["items"]] == ["alpha"]
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(GROUP, VERSION, "ray", PLURAL, body)
    assert exc.value.status == 409
    with pytest.raises(ApiException) as missing:
        custom.get_namespaced_custom_object(GROUP, VERSION, "ray", PLURAL, "nope")
    assert missing.value.status == 404


def test_merge_patch_bumps_generation_and_status_goes_through_the_subresource(
    api: k8s.ApiClient,
) -> None:
    custom = k8s.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(GROUP, VERSION, "ray", PLURAL,
                                           cluster_object("ray", "beta", 0, 2))
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, "ray", PLURAL, "beta", {"spec": {"maxWorkers": 5}})
    assert patched["metadata"]["generation"] == 2
    status = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, "ray", PLURAL, "beta", {"status": {"phase": "Running"}})
    assert status["status"]["phase"] == "Running"
    assert status["metadata"]["generation"] == 2  # a status write is not a spec change


def test_pods_are_scheduled_and_started_by_the_kubelet_model(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "p", "labels": {"app": "x"}},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    core.create_namespaced_pod("ray", pod)
    stream = k8s_watch.Watch().stream(core.list_namespaced_pod, "ray", label_selector="app=x",
                                      timeout_seconds=5)
    phases = []
    for event in stream:
        phases.append(event["object"].status.phase)
        if phases[-1] == "Running":
            break
    assert phases[-1] == "Running"
    assert core.list_namespaced_pod("ray", label_selector="app=y").items == []


def test_delete_with_a_stale_uid_is_refused(api: k8s.ApiClient) -> None:
    core = k8s.CoreV1Api(api)
    core.create_namespaced_service("ray", {"apiVersion": "v1", "kind": "Service",
                                           "metadata": {"name": "s"},
                                           "spec": {"ports": [{"port": 80}]}})
    with pytest.raises(ApiException) as exc:
        core.delete_namespaced_service("s", "ray", body=k8s.V1DeleteOptions(
            preconditions=k8s.V1Preconditions(uid="not-its-uid")))
    assert exc.value.status == 409
    core.delete_namespaced_service("s", "ray")
    with pytest.raises(ApiException):
        core.read_namespaced_service("s", "ray")
