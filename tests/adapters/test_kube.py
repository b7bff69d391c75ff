"""The live client's handling of what a server may send: paged lists, 429 with Retry-After,
and watch lines that are not events. A scripted HTTP server plays the API server."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client as k8s

from adapters.kube import KubeApi, api_client
from driver.execute import ApiError
from sim import serve
from sim.clusters import cluster_object

Reply = tuple[int, dict[str, str], bytes]


class Script:
    """Answers requests with the next scripted reply, and records the request paths."""

    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.paths: list[str] = []


@pytest.fixture()
def scripted() -> Iterator[tuple[Script, KubeApi, list[float]]]:
    script = Script([])

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            script.paths.append(self.path)
            status, headers, body = script.replies.pop(0)
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    slept: list[float] = []
    api = KubeApi(api_client(k8s.Configuration(
        host=f"http://127.0.0.1:{server.server_address[1]}")), sleep=slept.append)
    yield script, api, slept
    server.shutdown()


def test_a_429_with_retry_after_is_waited_out_then_retried(
    scripted: tuple[Script, KubeApi, list[float]],
) -> None:
    script, api, slept = scripted
    busy = json.dumps({"kind": "Status", "code": 429, "reason": "TooManyRequests"}).encode()
    pod = json.dumps({"metadata": {"name": "p"}}).encode()
    script.replies = [(429, {"Retry-After": "2"}, busy), (429, {"Retry-After": "1"}, busy),
                      (200, {}, pod)]
    assert api.get("pods", "ns", "p")["metadata"]["name"] == "p"
    assert slept == [2.0, 1.0]


def test_a_429_without_retry_after_or_too_often_goes_back_to_the_engine(
    scripted: tuple[Script, KubeApi, list[float]],
) -> None:
    script, api, slept = scripted
    busy = json.dumps({"kind": "Status", "code": 429, "reason": "TooManyRequests"}).encode()
    script.replies = [(429, {}, busy)]
    with pytest.raises(ApiError) as bare:
        api.get("pods", "ns", "p")
    assert bare.value.status == 429 and slept == []
    script.replies = [(429, {"Retry-After": "1"}, busy)] * 4
    with pytest.raises(ApiError) as often:
        api.get("pods", "ns", "p")
    assert often.value.status == 429 and slept == [1.0, 1.0, 1.0]


def test_watch_lines_that_are_no_events_are_reported_and_skipped(
    scripted: tuple[Script, KubeApi, list[float]],
) -> None:
    script, api, _ = scripted
    good = {"type": "ADDED", "object": {"metadata": {"name": "p", "resourceVersion": "7"}}}
    lines = [b"{not json", json.dumps({"type": "BOOKMARK", "object": {"metadata": {}}}).encode(),
             json.dumps({"type": "RENAMED", "object": {"metadata": {}}}).encode(),
             json.dumps({"type": "ADDED", "object": "a string"}).encode(),
             json.dumps(good).encode()]
    script.replies = [(200, {}, b"\n".join(lines) + b"\n")]
    reported: list[tuple[str, str]] = []
    api.on_malformed = lambda resource, detail: reported.append((resource, detail))
    events = list(api.watch("pods", "ns", None, "1", timeout=5))
    assert events == [("ADDED", good["object"])]
    assert [r for r, _ in reported] == ["pods"] * 3
    assert "not JSON" in reported[0][1] and "RENAMED" in reported[1][1]


@pytest.fixture()
def five_clusters() -> Iterator[KubeApi]:
    """`sim serve` holding RayClusters c0..c4, and a client reading lists 2 per page."""
    world = serve.empty_world()
    world.namespace("ray")
    with serve.in_thread(world) as port:
        api = KubeApi(k8s.ApiClient(k8s.Configuration(host=f"http://127.0.0.1:{port}")),
                      page_size=2)
        for i in range(5):
            api.create("rayclusters", "ray", cluster_object("ray", f"c{i}", 0, 1))
        yield api


def test_lists_come_in_pages_of_one_snapshot(five_clusters: KubeApi) -> None:
    api = five_clusters
    listing = api.pages("rayclusters", "ray")
    pages = iter(listing)
    first = next(pages)
    version = listing.version
    api.create("rayclusters", "ray", cluster_object("ray", "late", 0, 1))
    rest = [obj for page in pages for obj in page]
    names = [obj["metadata"]["name"] for obj in [*first, *rest]]
    assert names == ["c0", "c1", "c2", "c3", "c4"]  # the snapshot, not "late"
    assert len(first) == 2 and listing.version == version
    assert len(api.list("rayclusters", "ray")[0]) == 6  # all pages, read eagerly


def test_a_continue_token_too_old_is_410_gone(five_clusters: KubeApi) -> None:
    with pytest.raises(ApiError) as gone:
        five_clusters._call("GET", "/apis/cluster.ray.io/v1/namespaces/ray/rayclusters",
                            query=[("limit", "2"), ("continue", "99999:2")])
    assert gone.value.status == 410
