"""Polling heads: one read per cluster in flight, reads off the loop, a grace period before a
head that cannot be read counts as autoscaling failing, and failures logged once per kind."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from adapters import ray_load
from adapters.ray_poll import Poller, address_of
from engine import events as ev
from tests.builders import raycluster
from tests.engine.world import World

KEY = ("ray", "example-cluster")


class Inline(concurrent.futures.Executor):
    """Runs each read when submitted (the real pool runs them on threads)."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        self.submitted += 1
        fn(*args, **kwargs)
        return concurrent.futures.Future()


def running_world() -> World:
    world = World()
    world.apply_cluster(raycluster())
    world.settle()
    return world


def poller(read: Callable[..., Any], now: list[float]) -> tuple[Poller, list[ev.Event],
                                                                 list[str]]:
    delivered: list[ev.Event] = []
    logged: list[str] = []
    p = Poller(deliver=delivered.append, log=logged.append, clock=lambda: now[0],
               template="{ip}:{port}", grace=60.0, read=read, pool=Inline())
    return p, delivered, logged


def test_the_address_is_the_running_heads() -> None:
    cs = running_world().state.clusters[KEY]
    assert address_of(cs, "{service}.{namespace}.svc:{port}") == (
        "example-cluster-ray-head.ray.svc:6379")
    assert address_of(cs, "{ip}:{port}") == f"{cs.pods[cs.head].ip}:6379"


def test_a_good_read_becomes_the_clusters_load() -> None:
    world, now = running_world(), [100.0]
    from ray.core.generated import autoscaler_pb2 as pb
    reading = ray_load.Reading(state=pb.ClusterResourceState())
    p, delivered, _ = poller(lambda address, timeout: reading, now)
    p.due(world.state, now[0])
    assert [type(e) for e in delivered] == [ev.RayLoad] and delivered[0].cluster == KEY


def test_a_head_once_read_fails_autoscaling_only_after_the_grace_period() -> None:
    world, now = running_world(), [100.0]
    from ray.core.generated import autoscaler_pb2 as pb
    answers: list[Any] = [ray_load.Reading(state=pb.ClusterResourceState())]

    def read(address: str, timeout: float) -> Any:
        if answers:
            return answers.pop()
        raise ray_load.LoadError(f"cannot reach the Ray head at {address}: refused")

    p, delivered, logged = poller(read, now)
    p.due(world.state, now[0])  # read once: Ray ran there
    for t in (130.0, 159.0):
        now[0] = t
        p.due(world.state, t)
    assert [type(e) for e in delivered] == [ev.RayLoad] and len(logged) == 1
    assert logged[0].startswith("example-cluster,ray: WARNING cannot read Ray load yet")
    now[0] = 161.0
    p.due(world.state, now[0])
    now[0] = 200.0
    p.due(world.state, now[0])
    assert [type(e) for e in delivered] == [ev.RayLoad, ev.RayUnreachable]  # once
    assert "could not be read for 61 s" in delivered[1].reason  # type: ignore[union-attr]


def test_a_head_never_read_is_told_once_and_not_restarted() -> None:
    """A head with no Ray (a simulated one, under sim serve) was restarted every minute,
    with a misleading HeadPodLost Event; it now scales on bounds and says so once."""
    world, now = running_world(), [100.0]

    def refuse(address: str, timeout: float) -> Any:
        raise ray_load.LoadError(f"cannot reach the Ray head at {address}: refused")

    p, delivered, logged = poller(refuse, now)
    for t in (100.0, 161.0, 300.0, 900.0):
        now[0] = t
        p.due(world.state, t)
    assert delivered == []
    assert [line.split(": WARNING ")[1].split(" ")[0] for line in logged] == ["cannot", "no"]
    assert "follow minWorkers and maxWorkers" in logged[1]


def test_a_read_in_flight_is_not_started_again() -> None:
    world, now = running_world(), [0.0]
    p, _, _ = poller(lambda address, timeout: None, now)
    p.pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    p.inflight.add(KEY)
    p.due(world.state, 0.0)
    p.pool.shutdown(wait=True)
    assert KEY in p.inflight  # nothing was submitted for it


def test_without_the_ray_package_the_operator_runs_on_bounds_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    from adapters import __main__ as cli
    from sim import serve

    config = tmp_path / "kubeconfig"
    serve.write_kubeconfig(config, 1)  # never contacted: only the process is built
    args = ["--kubeconfig", str(config), "--operator-name", "t"]
    assert cli.build(cli.parse(args), {}).poller is not None
    assert cli.build(cli.parse([*args, "--no-ray-load"]), {}).poller is None
    monkeypatch.setattr(ray_load, "available", lambda: False)
    assert cli.build(cli.parse(args), {}).poller is None
    with pytest.raises(ray_load.LoadError, match="not installed"):
        ray_load.read("127.0.0.1:1")
