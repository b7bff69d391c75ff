"""`python -m sim serve`: the simulated cluster as a Kubernetes API on 127.0.0.1.

The same in-memory API (`sim.api`), kubelet and Ray models the simulator runs, behind an HTTP
face that the official `kubernetes` client and `kubectl` speak to, so the real operator
process can run against a simulated cluster (as kwok offers for kube-apiserver). Virtual time
follows the wall clock. Served: discovery, list (label selectors, resourceVersion), watch
(history, then live; 410 Gone as an ERROR event when the history lost the version asked
for), get, create (201), JSON merge patch (also for `strategic-merge-patch`, as CRDs get
it), JSON Patch with `test` operations (a failed test is 409 Conflict), replace, delete with
uid and resourceVersion preconditions, and the status subresource. Errors are `Status`
objects with the HTTP code. `kubectl get` asks for Tables (`sim.tables`: the real server's
columns); lists and watches take label and field selectors (`sim.selectors`). Not yet: server-side
apply; no authentication (it listens on 127.0.0.1 only).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from driver.execute import ApiError, Precondition
from sim import tables
from sim.api import RESOURCES, Api
from sim.processes import ProcessKubelet
from sim.scenario import Scenario
from sim.selectors import parse_fields, parse_selector
from sim.world import World

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
TICK = 0.05  # seconds between advances of virtual time
VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]
SHORT = {"pods": ["po"], "services": ["svc"], "events": ["ev"],
         "namespaces": ["ns"]}


def _group_version(resource: str) -> tuple[str, str]:
    api_version = RESOURCES[resource][0]
    group, _, version = api_version.rpartition("/")
    return group, version


def status_error(code: int, reason: str, message: str) -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}
    return web.json_response(body, status=code)


def _from(exc: ApiError) -> web.Response:
    return status_error(exc.status or 504, exc.reason, exc.message or exc.reason)


def json_patch(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """RFC 6902 on a copy of `obj` (add, remove, replace, test); ApiError on a failed test."""
    doc = copy.deepcopy(obj)
    for op in ops:
        path = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = doc
        for part in path[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.setdefault(part, {})
        last = path[-1] if path else ""
        kind = op["op"]
        if kind == "test":
            current = (parent[int(last)] if isinstance(parent, list) else parent.get(last))
            if current != op.get("value"):
                raise ApiError(409, "Conflict", f"test failed at {op['path']}: "
                                                f"{current!r} is not {op.get('value')!r}")
        elif kind in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, op["value"])
                else:
                    parent[index] = op["value"]
            else:
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                parent.pop(int(last))
            else:
                parent.pop(last, None)
        else:
            raise ApiError(422, "Invalid", f"JSON Patch op {kind!r} is not supported")
    return doc


class Server:
    """The HTTP face of one simulated world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.api: Api = world.api
        self.started = time.monotonic()
        epoch = time.time() - world.now  # timestamps in wall-clock time: kubectl shows AGE
        self.api.now = lambda: epoch + world.now
        self.streams: list[asyncio.Queue[tuple[str, str, dict[str, Any]] | None]] = []
        self.api.watchers.append(self._notify)

    # -- time -----------------------------------------------------------------------------

    def advance(self) -> None:
        self.world.advance_to(time.monotonic() - self.started)
        for tick in self.world.tickers:
            tick()

    async def clock(self) -> None:
        while True:
            self.advance()
            await asyncio.sleep(TICK)

    # -- discovery ------------------------------------------------------------------------

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"major": "1", "minor": "31", "gitVersion": "v1.31.0-sim",
                                  "platform": "linux/amd64"})

    async def core_versions(self, request: web.Request) -> web.Response:
        return web.json_response({"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": []})

    async def groups(self, request: web.Request) -> web.Response:
        groups = sorted({g for g, _ in map(_group_version, RESOURCES) if g})
        return web.json_response({"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": g, "versions": [{"groupVersion": f"{g}/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": f"{g}/v1", "version": "v1"}}
            for g in groups]})

    async def resources(self, request: web.Request) -> web.Response:
        group = request.match_info.get("group", "")
        version = request.match_info["version"]
        out = []
        for resource, (_, kind) in RESOURCES.items():
            if _group_version(resource) != (group, version):
                continue
            namespaced = resource != "namespaces"
            out.append({"name": resource, "singularName": kind.lower(), "kind": kind,
                        "namespaced": namespaced, "verbs": VERBS,
                        "shortNames": SHORT.get(resource, [])})
            if resource in ("rayclusters", "pods"):
                out.append({"name": f"{resource}/status", "singularName": "", "kind": kind,
                            "namespaced": namespaced, "verbs": ["get", "patch", "update"]})
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                  "groupVersion": f"{group}/{version}" if group else version,
                                  "resources": out})

    # -- objects --------------------------------------------------------------------------

    def _resource(self, request: web.Request) -> str:
        resource = request.match_info["resource"]
        group = request.match_info.get("group", "")
        if resource not in RESOURCES or _group_version(resource)[0] != group:
            raise ApiError(404, "NotFound", f"the server could not find the requested "
                                            f"resource {resource}")
        return resource

    async def collection(self, request: web.Request) -> web.StreamResponse:
        try:
            resource = self._resource(request)
            namespace = request.match_info.get("namespace")
            if request.method == "POST":
                body = await request.json()
                created = self.api.create(resource, namespace or "", body)
                self.advance()
                return web.json_response(created, status=201)
            selector = request.query.get("labelSelector") or None
            fields = request.query.get("fieldSelector") or None
            if request.query.get("watch") in ("true", "1"):
                return await self._watch(request, resource, namespace, selector, fields)
            try:
                limit = int(request.query.get("limit") or 0)
            except ValueError:
                raise ApiError(400, "BadRequest", "limit: expected an integer") from None
            items, rv, token = self.api.list_page(
                resource, namespace, selector, limit=limit,
                token=request.query.get("continue") or "", fields=fields)
            meta = {"resourceVersion": rv, **({"continue": token} if token else {})}
            if _wants_table(request):
                return web.json_response(tables.table(resource, items, meta, self.api.now()))
            api_version, kind = RESOURCES[resource]
            return web.json_response({"kind": f"{kind}List", "apiVersion": api_version,
                                      "metadata": meta, "items": items})
        except ApiError as exc:
            return _from(exc)

    async def item(self, request: web.Request) -> web.Response:
        try:
            resource = self._resource(request)
            namespace = request.match_info.get("namespace", "")
            name = request.match_info["name"]
            status = request.path.endswith("/status")
            if request.method == "GET":
                obj = self.api.get(resource, namespace, name)
                if _wants_table(request) and not status:
                    return web.json_response(tables.table(
                        resource, [obj], {"resourceVersion": str(self.api.rv)},
                        self.api.now()))
                return web.json_response(obj)
            if request.method == "DELETE":
                options = await request.json() if request.can_read_body else {}
                pre = (options or {}).get("preconditions") or {}
                before = self.api.get(resource, namespace, name)
                self.api.delete(resource, namespace, name, uid=pre.get("uid"),
                                resource_version=pre.get("resourceVersion"))
                self.advance()
                try:  # still there while it terminates gracefully: 202 with it, as the server
                    return web.json_response(self.api.get(resource, namespace, name),
                                             status=202)
                except ApiError:
                    return web.json_response(before)
            body = await request.json()
            if request.method == "PUT":
                if status:
                    result = self.api.patch_status(resource, namespace, name,
                                                   body.get("status") or {})
                else:
                    result = self.api.replace(resource, namespace, name, body)
            else:
                result = self._patch(request, resource, namespace, name, body, status=status)
            self.advance()
            return web.json_response(result)
        except ApiError as exc:
            return _from(exc)

    def _patch(self, request: web.Request, resource: str, namespace: str, name: str,
               body: Any, *, status: bool) -> dict[str, Any]:
        kind = request.content_type
        if kind == "application/json-patch+json":
            old = self.api.get(resource, namespace, name)
            new = json_patch(old, body)  # raises on a failed test
            annotations = (new["metadata"].get("annotations") or {})
            tested = {k: v for k, v in annotations.items()
                      if (old["metadata"].get("annotations") or {}).get(k) == v}
            pre = Precondition(uid=old["metadata"].get("uid", ""), annotations=tested)
            if status:
                return self.api.patch_status(resource, namespace, name, new.get("status") or {},
                                             resource_version=old["metadata"]["resourceVersion"],
                                             precondition=pre)
            new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self.api.replace(resource, namespace, name, new)
        if kind not in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            raise ApiError(415, "UnsupportedMediaType", f"patch type {kind} is not supported")
        if status:
            return self.api.patch_status(resource, namespace, name, body.get("status") or {})
        return self.api.patch(resource, namespace, name, body)

    # -- watch ----------------------------------------------------------------------------

    def _notify(self, resource: str, kind: str, obj: dict[str, Any]) -> None:
        for queue in self.streams:
            queue.put_nowait((resource, kind, obj))

    async def _watch(self, request: web.Request, resource: str, namespace: str | None,
                     selector: str | None, fields: str | None) -> web.StreamResponse:
        matches = parse_selector(selector) if selector else (lambda labels: True)
        field_matches = parse_fields(resource, fields) if fields else (lambda obj: True)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)

        def wanted(res: str, obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            return res == resource and (namespace is None or meta.get("namespace") == namespace
                                        ) and matches(meta.get("labels") or {}
                                                      ) and field_matches(obj)

        async def send(kind: str, obj: dict[str, Any]) -> None:
            await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")

        queue: asyncio.Queue[tuple[str, str, dict[str, Any]] | None] = asyncio.Queue()
        self.streams.append(queue)
        with contextlib.suppress(ConnectionError):  # the client went away: end the stream
            await self._stream(request, queue, send, wanted)
        self.streams.remove(queue)
        return response

    async def _stream(self, request: web.Request,
                      queue: asyncio.Queue[tuple[str, str, dict[str, Any]] | None],
                      send: Callable[[str, dict[str, Any]], Awaitable[None]],
                      wanted: Callable[[str, dict[str, Any]], bool]) -> None:
        """Send the history after the resourceVersion asked for, then live events."""
        since = request.query.get("resourceVersion")
        if since not in (None, "", "0"):
            try:
                for _, res, kind, obj in list(self.api.events_since(int(since))):
                    if wanted(res, obj):
                        await send(kind, obj)
            except ApiError as exc:
                await send("ERROR", {"kind": "Status", "apiVersion": "v1",
                                     "status": "Failure", "reason": "Expired",
                                     "code": 410, "message": str(exc)})
                return
        timeout = float(request.query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = await asyncio.wait_for(queue.get(), timeout=left)
            except TimeoutError:
                break
            if item is not None and wanted(item[0], item[2]):
                await send(item[1], item[2])

    # -- the app --------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/version", self.version)
        r.add_get("/api", self.core_versions)
        r.add_get("/apis", self.groups)
        r.add_get("/api/{version}", self.resources)
        r.add_get("/apis/{group}/{version}", self.resources)
        for prefix in ("/api/{version}", "/apis/{group}/{version}"):
            r.add_route("*", prefix + "/{resource}", self.collection)
            r.add_route("*", prefix + "/namespaces/{namespace}/{resource}", self.collection)
            r.add_route("*", prefix + "/namespaces/{namespace}/{resource}/{name}", self.item)
            r.add_route("*", prefix + "/namespaces/{namespace}/{resource}/{name}/status",
                        self.item)
        r.add_route("*", "/api/{version}/{resource}/{name}", self.item)  # namespaces
        return app


DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
"""What a new Kubernetes cluster has; objects in any other namespace wait for its creation."""


def empty_world(*, startup_delay: float = 2.0, startup_jitter: float = 1.0,
                namespaces: Iterable[str] = ()) -> World:
    """A started world with no clusters and no operators: what `sim serve` serves by default
    (the tests use short startup delays), with a new cluster's namespaces and `namespaces`."""
    scenario = Scenario(name="empty", source="(none)", description="", seed=0,
                        duration=float("inf"), nodes=(), startup_delay=startup_delay,
                        startup_jitter=startup_jitter, operators=(), timeline=(), expect=())
    world = World(scenario=scenario)
    world.start()
    for name in (*DEFAULT_NAMESPACES, *namespaces):
        world.namespace(name)
    return world


def process_world(namespaces: Iterable[str] = ()) -> tuple[World, ProcessKubelet]:
    """An empty world whose pods are local Ray processes (`sim serve --ray-processes`); stop
    the kubelet's processes with `kubelet.stop_all()` when done."""
    world = empty_world(namespaces=namespaces)
    world.kubelet = False
    kubelet = ProcessKubelet(world.api, log=lambda line: print(line, flush=True))
    world.api.watchers.append(kubelet.on_change)
    world.tickers.append(kubelet.tick)
    return world, kubelet


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def kubeconfig(port: int) -> dict[str, Any]:
    """A kubeconfig for the served cluster (no credentials: it listens on 127.0.0.1)."""
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "sim",
        "clusters": [{"name": "sim", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "sim", "user": {}}],
        "contexts": [{"name": "sim", "context": {"cluster": "sim", "user": "sim"}}],
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for servers, operators and tests)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_kubeconfig(path: Path, port: int) -> None:
    path.write_text(yaml.safe_dump(kubeconfig(port), sort_keys=False))


async def start(world: World, *, port: int = 0) -> tuple[web.AppRunner, int, asyncio.Task[None]]:
    """Serve `world` on 127.0.0.1 (`port` 0: any free one); return the runner, the port and
    the task advancing virtual time."""
    server = Server(world)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = port
    for address in runner.addresses:  # the port the system chose when asked for 0
        bound = int(address[1])
        break
    return runner, bound, asyncio.get_running_loop().create_task(server.clock())


@contextlib.contextmanager
def in_thread(world: World, *, port: int = 0) -> Iterator[int]:
    """Serve `world` from a background thread (for tests and tools) on `port` (0: any free
    one); yield the port."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    found: list[int] = []
    stop = asyncio.Event()

    async def main() -> None:
        runner, bound, clock = await start(world, port=port)
        found.append(bound)
        started.set()
        await stop.wait()
        clock.cancel()
        await runner.shutdown()
        await runner.cleanup()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("sim serve did not start within 10 s")
    try:
        yield found[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
