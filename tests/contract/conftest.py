"""The backends the contract suite runs on: `api` is each of them in turn."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from adapters.kube import KubeApi
from sim import serve
from sim.api import Api, Client


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    with serve.in_thread(serve.empty_world(startup_delay=0.2, startup_jitter=0.1)) as port:
        yield port


@pytest.fixture(params=["in-process", "http"])
def api(request: pytest.FixtureRequest) -> Any:
    if request.param == "in-process":
        return Client(Api())
    port = request.getfixturevalue("http_port")
    return KubeApi(k8s.ApiClient(k8s.Configuration(host=f"http://127.0.0.1:{port}")))


