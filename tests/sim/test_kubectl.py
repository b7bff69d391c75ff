"""kubectl on `sim serve` shows what it shows on a real cluster: the server's columns for
each kind, one object's events in `describe`, the namespaces, and no short name that a real
cluster gives to another kind. kubectl is the one `scripts/control-plane build` builds (or
one on PATH)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from driver.execute import kubernetes_event
from engine.actions import EmitEvent
from sim import serve
from sim.clusters import cluster_object
from sim.world import World
from tests.helpers import until
from tests.realk8s.plane import kubectl_binary

Kubectl = Callable[..., list[str]]


@pytest.fixture(scope="module")
def world() -> World:
    world = serve.empty_world(startup_delay=0.1, startup_jitter=0.0)
    for ns in ("k1", "k2"):
        world.namespace(ns)
    return world


@pytest.fixture(scope="module")
def kubectl(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kubectl]:
    binary = kubectl_binary()
    config = tmp_path_factory.mktemp("kubectl") / "kubeconfig"
    with serve.in_thread(world) as port:
        serve.write_kubeconfig(config, port)

        def run(*args: str, stdin: str | None = None) -> list[str]:
            done = subprocess.run([binary, f"--kubeconfig={config}", *args], input=stdin,
                                  capture_output=True, text=True, timeout=60, check=True)
            return done.stdout.splitlines()
        yield run


def test_get_rayclusters_prints_the_crd_columns(world: World, kubectl: Kubectl) -> None:
    world.api.create("rayclusters", "k2", cluster_object("k2", "delta", 0, 1))
    world.api.patch_status("rayclusters", "k2", "delta",
                           {"phase": "Running", "autoscalerRetries": 2})
    out = kubectl("get", "rayclusters", "-n", "k2")
    assert out[0].split() == ["NAME", "STATUS", "RESTARTS", "AGE"]
    assert out[1].split()[:3] == ["delta", "Running", "2"]
    assert kubectl("get", "rayclusters", "-n", "k2", "-o", "name") == [
        "raycluster.cluster.ray.io/delta"]


def test_get_pods_shows_ready_status_and_restarts(world: World, kubectl: Kubectl) -> None:
    world.api.create("pods", "k1", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "busybox"}]}})
    out = kubectl("get", "pods", "-n", "k1", "-o", "wide")
    assert out[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    until(lambda: kubectl("get", "pods", "-n", "k1")[1].split()[1:4] == ["1/1", "Running", "0"])


def test_describe_shows_the_events_of_that_cluster_only(world: World,
                                                        kubectl: Kubectl) -> None:
    for name in ("alpha", "beta"):
        uid = world.api.create("rayclusters", "k1", cluster_object("k1", name, 0, 1))[
            "metadata"]["uid"]
        world.api.create("events", "k1", kubernetes_event(EmitEvent(
            cluster=("k1", name), type="Normal", reason="Tested", message=f"about {name}",
            uid=uid), "2026-01-01T00:00:00Z"))
    described = "\n".join(kubectl("describe", "raycluster", "alpha", "-n", "k1"))
    assert "about alpha" in described and "about beta" not in described
    events = kubectl("get", "events", "-n", "k1")
    assert events[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert any("raycluster/beta" in line for line in events)


def test_namespaces_are_listed_and_rc_is_not_ours(kubectl: Kubectl) -> None:
    names = [line.split()[0] for line in kubectl("get", "namespaces")[1:]]
    assert {"k1", "k2"} <= set(names)
    resources = json.dumps(kubectl("api-resources", "--api-group=cluster.ray.io"))
    assert "rayclusters" in resources and " rc " not in resources


def test_a_missing_cluster_is_reported_as_a_real_server_words_it(kubectl: Kubectl,
                                                                 tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as failed:
        kubectl("get", "raycluster", "nope", "-n", "k1")
    assert 'rayclusters.cluster.ray.io "nope" not found' in failed.value.stderr
