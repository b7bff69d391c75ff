"""The backends the contract suite runs on: `api` is each of them in turn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from adapters.kube import KubeApi
from sim import serve
from sim.api import Api, Client
from tests.realk8s.plane import Plane, namespace

NAMESPACES = ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "x1", "x2", "x3")
"""The namespaces the suite writes in (every backend refuses writes in missing ones)."""


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    world = serve.empty_world(startup_delay=0.2, startup_jitter=0.1)
    for ns in NAMESPACES:
        world.namespace(ns)
    with serve.in_thread(world) as port:
        yield port


def in_process() -> Client:
    api = Api()
    for ns in NAMESPACES:
        api.create("namespaces", "", {"metadata": {"name": ns}})
    return Client(api)


@pytest.fixture(scope="module")
def real_api(plane: Plane) -> KubeApi:
    for ns in NAMESPACES:
        namespace(plane, f"{ns}")
    return plane.api


@pytest.fixture(params=["in-process", "http", pytest.param("real", marks=pytest.mark.realk8s)])
def api(request: pytest.FixtureRequest) -> Any:
    """Each backend in turn: the in-process fake, `sim serve` over HTTP, and a real
    kube-apiserver (whatever the fakes do differently from it is a defect of the fakes)."""
    if request.param == "in-process":
        return in_process()
    if request.param == "real":
        return request.getfixturevalue("real_api")
    port = request.getfixturevalue("http_port")
    return KubeApi(k8s.ApiClient(k8s.Configuration(host=f"http://127.0.0.1:{port}")))


