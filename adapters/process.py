"""The `ray-operator` process: list and watch the scope, feed the driver's loop, serve health.

Threads only wait on sockets: one per watched resource and namespace reads its stream, turns
each object into the engine's small event (`Operator.translate`, pure) and queues that, so a
burst the loop has not caught up with costs ~300 bytes per event rather than the object's
~7 KB of JSON; the main thread alone touches the engine (`driver.operator.Operator`, the same loop
the simulator runs), so decisions stay sequential and replayable. A session lists every
resource of the scope, marks the engine synced, then watches from each list's
resourceVersion; a watch that answers 410 Gone (history lost) or fails ends the session,
and the next one relists (what vanished meanwhile becomes a deletion). Timers the engine asks
for (`Requeue`) become `Tick`s. `/metrics`, `/healthz` and `/readyz` are served on the
metrics port. SIGTERM stops the loop, then releases this install's leases, so other
installs take its clusters over at once.
"""

from __future__ import annotations

import heapq
import http.server
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from adapters.kube import KubeApi, Listing
from adapters.ray_poll import Poller
from driver.execute import ApiError
from driver.operator import WATCHED, Operator
from driver.record import Recorder
from engine import claiming, errors
from engine import events as ev
from engine.scopes import Scope

RESYNC_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
STALL_SECONDS = 60.0

Item = tuple[str, Any]
INBOX_LIMIT = 50_000
"""Watch events waiting for the loop, at most: beyond, watch threads wait (the server then
buffers, and drops a watcher that falls too far behind, which ends in a relist)."""


def _objects(listings: list[Listing], beat: Callable[[], None]) -> Iterator[dict[str, Any]]:
    """The objects of several paged lists, fetched as they are read (each page a beat of
    the main loop: a long relist is work, not a stall)."""
    for listing in listings:
        for page in listing:
            beat()
            yield from page


class Timers:
    """The times the loop must wake the engine: its Requeue actions and the moments the
    API budget refills. Built first and handed to the `Operator` (as `requeue` and
    `resume`) and to the `Process` that fires them, so nothing is rewired afterwards."""

    def __init__(self) -> None:
        self.due: list[float] = []

    def add(self, at: float) -> None:
        heapq.heappush(self.due, at)

    def fire(self, now: float) -> int:
        """Drop the times due by `now`; return how many were."""
        fired = 0
        while self.due and self.due[0] <= now:
            heapq.heappop(self.due)
            fired += 1
        return fired

    def wait(self, now: float, most: float) -> float:
        """How long the loop may sleep: until the next time due, at most `most`."""
        return min(self.due[0] - now, most) if self.due else most


class Heartbeat:
    """When the main loop last turned: `/healthz` fails once it has not for `limit`
    seconds, so a liveness probe restarts an operator that is stuck (the loop turns at
    least every second while idle)."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.last = clock()

    def beat(self) -> None:
        self.last = self.clock()

    def stalled(self) -> float:
        """Seconds since the last turn when past the limit, else 0."""
        quiet = self.clock() - self.last
        return quiet if quiet > self.limit else 0.0


class Process:
    def __init__(self, *, api: KubeApi, operator: Operator, scope: Scope, timers: Timers,
                 clock: Callable[[], float] = time.time, watch_timeout: int = 60) -> None:
        self.api = api
        self.op = operator
        self.scope = scope
        self.clock = clock
        self.watch_timeout = watch_timeout
        self.inbox: queue.Queue[Item] = queue.Queue(maxsize=INBOX_LIMIT)
        self.timers = timers
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.session = 0
        self.poller: Poller | None = None  # reads each cluster's Ray load (adapters.ray_poll)
        self.next_poll = 0.0
        self.heartbeat = Heartbeat(STALL_SECONDS)
        self.recorder: Recorder | None = None  # --record: flushed every second, closed at exit
        self.flushed = 0.0

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        failures = 0
        told = ""
        while not self.stopping.is_set():
            try:
                self._session()
                failures = 0
            except ApiError as exc:
                if self.ready.is_set():  # this session had synced: a failure now is news
                    told = ""
                self.ready.clear()
                self.op.metrics.errors.labels(kind="list", code=str(exc.status)).inc()
                if str(exc) != told:  # the same failure again is only counted
                    told = str(exc)
                    self.op.log(f"relisting after {exc}" + (
                        " (the same failure again is only counted in "
                        "ray_operator_errors_total{kind=\"list\"})" if exc.status else ""))
                failures += 1
                self.heartbeat.beat()
                self.stopping.wait(RESYNC_BACKOFF[min(failures, len(RESYNC_BACKOFF)) - 1])
        self.release()
        if self.recorder is not None:
            self.recorder.close()

    def _namespaces(self) -> list[str | None]:
        if self.scope.namespaces is None:
            return [None]
        return list(sorted(self.scope.namespaces))

    def _session(self) -> None:
        self.session += 1
        session = self.session
        # Lists are read page by page as the engine observes them (only keys are kept), so
        # a relist of 100,000 pods never holds them all; each watch starts from its list's
        # snapshot version.
        listings = {(resource, ns): self.api.pages(resource, ns, selector)
                    for resource, selector in WATCHED.items() for ns in self._namespaces()}
        lists = {resource: _objects([listing for (r, _), listing in listings.items()
                                     if r == resource], self.heartbeat.beat)
                 for resource in WATCHED}
        now = self.clock()
        self.op.relist(lists, now)
        if not self.op.state.synced:
            self.op.synced(now)
        self.op.run()
        self.ready.set()
        for (resource, ns), listing in listings.items():
            threading.Thread(target=self._watch, args=(session, resource, ns, listing.version),
                             daemon=True, name=f"watch-{resource}-{ns}").start()
        while not self.stopping.is_set():
            item = self._next()
            if item is None:
                continue
            kind, payload = item
            if kind == "gone" and payload == session:
                raise ApiError(410, "Gone", "a watch lost its history")
            if kind == "event" and payload[0] == session:
                self.op.feed((payload[1],))
                self.op.run()

    def deliver(self, event: ev.Event) -> None:
        """An event from another thread (a Ray load read) for the current session."""
        self.inbox.put(("event", (self.session, event)))

    def _next(self) -> Item | None:
        """The next watch item, or None after firing the timers due."""
        self.heartbeat.beat()
        now = self.clock()
        if self.poller is not None and now >= self.next_poll:
            self.next_poll = now + self.poller.interval
            self.poller.due(self.op.state, now)
        if self.timers.fire(now):
            self.op.tick(now)
            self.op.run()
        if self.recorder is not None and now - self.flushed >= 1.0:
            self.flushed = now
            self.recorder.flush()
        wait = self.timers.wait(now, 1.0)
        try:
            return self.inbox.get(timeout=max(wait, 0.0))
        except queue.Empty:
            return None

    def _watch(self, session: int, resource: str, namespace: str | None, version: str) -> None:
        selector = WATCHED[resource]
        while not self.stopping.is_set() and self.session == session:
            try:
                for event, obj in self.api.watch(resource, namespace, selector, version,
                                                 timeout=self.watch_timeout):
                    version = str(obj["metadata"].get("resourceVersion") or version)
                    fact = self.op.translate(resource, event, obj, self.clock())
                    if fact is not None:
                        self.inbox.put(("event", (session, fact)))
            except ApiError as exc:
                if exc.status == 410:
                    self.inbox.put(("gone", session))
                    return
                self.stopping.wait(1.0)  # a dropped connection: watch again from `version`
            except Exception as exc:  # never let a watch thread die silently
                self.op.log(f"ERROR the {resource} watch failed ({errors.describe(exc)}); "
                            "watching again in 5 s")
                self.stopping.wait(5.0)

    def stop(self) -> None:
        self.stopping.set()
        if self.poller is not None:
            self.poller.stop()

    def release(self) -> None:
        """On the way out: delete this install's leases so others take over at once."""
        install = self.op.state.install
        if install is None:
            return
        now = self.clock()
        for ns in list(self.op.state.own_leases):
            if claiming.rival_alive(self.op.state, ns, now):
                continue  # a newer process of this install holds it: not ours to delete
            try:
                self.api.delete("leases", ns, install.lease_name)
            except ApiError:
                continue


def health_server(process: Process, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """`/metrics` (Prometheus text), `/healthz` (the main loop turns), `/readyz` (synced),
    on `host:port`; raises OSError when that address cannot be bound."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                body, code = process.op.metrics.text(), 200
                kind = "text/plain; version=0.0.4"
            elif self.path == "/healthz":
                stalled = process.heartbeat.stalled()
                body, code, kind = (b"ok\n", 200, "text/plain") if not stalled else (
                    f"the main loop has not turned for {stalled:.0f} s\n".encode(), 503,
                    "text/plain")
            elif self.path == "/readyz":
                ready = process.ready.is_set()
                body, code, kind = (b"ok\n", 200, "text/plain") if ready else (
                    b"not synced\n", 503, "text/plain")
            else:
                body, code, kind = b"not found\n", 404, "text/plain"
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="health").start()
    return server

