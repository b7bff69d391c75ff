"""`ray-operator` (also `python -m adapters`): the operator process (`ray-operator --help`)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attrs import define, field
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from adapters import kube, logs, ray_load
from adapters.kube import KubeApi
from adapters.leader import RETRY_SECONDS, Elector
from adapters.process import STALL_SECONDS, Heartbeat, Process, Timers, health_server
from adapters.ray_poll import ADDRESS, Poller
from driver import record
from driver.budget import Budget
from driver.metrics import Metrics
from driver.operator import Operator
from engine import build as engine_build
from engine import claims, codec, scopes
from engine import state as st


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ray-operator", description="Run and autoscale many Ray clusters.",
        epilog="subcommands:\n  load --address HOST:PORT   print the load the engine would "
               "read from one Ray head, as JSON (ray-operator load --help)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--namespace", help="manage only this namespace (also "
                                        f"${scopes.ENV}); default: every namespace")
    p.add_argument("--watch-namespace", metavar="A,B",
                   help="manage only these namespaces (comma-separated)")
    p.add_argument("--kubeconfig", help="else in-cluster config, else ~/.kube/config")
    p.add_argument("--operator-name",
                   help="this install's name in ownership claims (default: pod name or host)")
    p.add_argument("--metrics-port", type=int, default=8080,
                   help="serve /metrics, /healthz and /readyz on this port of every "
                        "interface (default %(default)s)")
    p.add_argument("--metrics-bind-address", metavar="[HOST]:PORT",
                   help="serve them on this address instead, e.g. 127.0.0.1:8080 or :8080")
    p.add_argument("--healthz-stall-seconds", type=float, default=STALL_SECONDS,
                   help="/healthz fails once the main loop has not turned for this long "
                        "(default %(default)g), so a liveness probe restarts a stuck operator")
    p.add_argument("--qps", type=float, default=50.0, help="API calls per second")
    p.add_argument("--burst", type=int, default=100)
    p.add_argument("--ray-address", default=ADDRESS, metavar="TEMPLATE",
                   help="where each head's GCS is, from {service} {namespace} {cluster} {ip} "
                        "{port} (default %(default)s)")
    p.add_argument("--ray-poll-seconds", type=float, default=5.0,
                   help="how often each cluster's Ray load is read")
    p.add_argument("--ray-grace-seconds", type=float, default=60.0,
                   help="how long a running head may stay unreadable before autoscaling "
                        "counts as failed (the cluster is restarted)")
    p.add_argument("--no-ray-load", action="store_true",
                   help="do not read Ray load: workers follow minWorkers/maxWorkers only")
    p.add_argument("--lease-seconds", type=float, default=claims.LEASE_SECONDS)
    p.add_argument("--leader-elect", action="store_true",
                   help="replicas of this install elect one leader (a Lease); the others wait")
    p.add_argument("--log-format", choices=logs.FORMATS, default="text",
                   help="text: one line each, the cluster's `<name>,<namespace>:` first, then "
                        "the UTC time and level; json: one object each (default %(default)s)")
    p.add_argument("--record", metavar="DIR",
                   help="keep a record of every event folded and action taken in DIR, in "
                        "rotating segments that each start with a snapshot: python -m sim "
                        "replay DIR re-derives every decision")
    p.add_argument("--record-segment-mib", type=float, default=64.0, metavar="MIB",
                   help="start a new segment past this size (default %(default)g)")
    p.add_argument("--record-segments", type=int, default=4, metavar="N",
                   help="keep the newest N segments (default %(default)s)")
    p.add_argument("--leader-namespace",
                   help="where the leader Lease lives (default: $POD_NAMESPACE, else default)")
    return p.parse_args(argv)


def bind_address(args: argparse.Namespace) -> tuple[str, int]:
    """(host, port) for the metrics server, from --metrics-bind-address or --metrics-port;
    raises ValueError naming the flag."""
    text = args.metrics_bind_address
    if text is None:
        return "0.0.0.0", args.metrics_port
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"--metrics-bind-address: expected [HOST]:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def api_client(kubeconfig: str | None) -> k8s.ApiClient:
    configuration = k8s.Configuration()
    if kubeconfig:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
        except k8s_config.ConfigException:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
    return kube.api_client(configuration)


@define
class MalformedWatch:
    """A watch line that is no usable event: counted, skipped, and logged the first time per
    resource only (a server streaming garbage must not flood the log)."""

    log: Callable[[str], None]
    metrics: Metrics
    seen: set[str] = field(factory=set)

    def __call__(self, resource: str, detail: str) -> None:
        self.metrics.malformed(resource)
        if resource not in self.seen:
            self.seen.add(resource)
            self.log(f"ray-operator: skipping a malformed {resource} watch event ({detail}); "
                     "further ones are only counted in ray_operator_malformed_objects_total")


def build(args: argparse.Namespace, env: dict[str, str]) -> Process:
    scope = scopes.resolve(namespace=args.namespace, watch=args.watch_namespace, env=env)
    name = args.operator_name or env.get("POD_NAME") or socket.gethostname()
    install = claims.Install(name=name, rank=scope.rank, lease_seconds=args.lease_seconds,
                             renew_seconds=args.lease_seconds / 3, instance=instance())
    log = logging.getLogger("ray-operator")
    metrics = Metrics()
    api = KubeApi(api_client(args.kubeconfig), on_request=metrics.request,
                  on_malformed=MalformedWatch(log=log.warning, metrics=metrics))
    timers = Timers()
    op = Operator(name=name, api=api, scope=scope, state=st.initial(install=install),
                  log=log.info, budget=Budget(qps=args.qps, burst=args.burst),
                  metrics=metrics, clock=time.time, requeue=timers.add, resume=timers.add)
    process = Process(api=api, operator=op, scope=scope, timers=timers, clock=time.time)
    if args.record:
        process.recorder = op.trace = record.Recorder(
            Path(args.record), name, lambda: op.state,
            segment_bytes=int(args.record_segment_mib * 1024 * 1024), keep=args.record_segments)
    if ray_load.available() and not args.no_ray_load:
        process.poller = Poller(deliver=process.deliver, log=log.info, clock=process.clock,
                                template=args.ray_address, interval=args.ray_poll_seconds,
                                grace=args.ray_grace_seconds)
        op.ray = process.poller  # drains go to the heads the poller reads
    return process


def instance() -> str:
    """This process among any others of its install: newer ones sort later (their start
    time first), so where two run at once the newer acts and the older stands down."""
    started = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"{started}/{socket.gethostname()}/{os.getpid()}"


def load_command(argv: list[str]) -> int:
    """`ray-operator load --address HOST:PORT`: the load the engine would receive from that
    Ray head, as JSON (the engine's RayLoad event, as a trace records it)."""
    p = argparse.ArgumentParser(prog="ray-operator load", description=load_command.__doc__)
    p.add_argument("--address", required=True, help="the head's GCS, HOST:PORT (port 6379 "
                   "unless the head's start command gives --port)")
    p.add_argument("--cluster", default="default/ray", metavar="NAMESPACE/NAME",
                   help="the cluster the report is labelled with")
    p.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args(argv)
    namespace, _, name = args.cluster.partition("/")
    if not name:
        p.error(f"--cluster: expected NAMESPACE/NAME, got {args.cluster!r}")
    try:
        reading = ray_load.read(args.address, timeout=args.timeout)
    except ray_load.LoadError as exc:
        print(f"ray-operator load: {exc}", file=sys.stderr)
        return 1
    event = ray_load.to_event(reading, cluster=(namespace, name), at=time.time())
    print(json.dumps(codec.event_to_dict(event), indent=2, sort_keys=True))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["load"]:
        return load_command(argv[1:])
    args = parse(argv)
    # Lines about a cluster start with `<name>,<namespace>:` (adapters.logs).
    log = logs.configure(args.log_format)
    try:
        host, port = bind_address(args)
        process = build(args, dict(os.environ))
    except (scopes.ScopeError, ValueError, record.RecordError) as exc:
        print(f"ray-operator: {exc}", file=sys.stderr)
        return 2
    process.heartbeat = Heartbeat(args.healthz_stall_seconds)
    try:
        health_server(process, host, port)
    except OSError as exc:
        print(f"ray-operator: cannot serve metrics and health on {host}:{port}: "
              f"{exc.strerror or exc}", file=sys.stderr)
        return 2

    def stop(signum: int, frame: Any) -> None:
        log.info(f"ray-operator {process.op.name}: stopping on {signal.Signals(signum).name}")
        process.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    op = process.op
    elector = None
    if args.leader_elect:
        identity = os.environ.get("POD_NAME") or socket.gethostname()
        elector = Elector(process.api, install=op.name, identity=identity,
                          namespace=args.leader_namespace or os.environ.get(
                              "POD_NAMESPACE") or "default")
        log.info(f"ray-operator {op.name}: {identity} waits to lead ({elector.name})")
        while not process.stopping.is_set() and not elector.try_acquire_or_renew():
            process.heartbeat.beat()  # waiting to lead is not a stall
            process.stopping.wait(RETRY_SECONDS)
        if process.stopping.is_set():
            return 0
        lost = threading.Event()

        def keep() -> None:
            while not process.stopping.wait(RETRY_SECONDS):
                if not elector.try_acquire_or_renew() and not elector.leading:
                    log.error(f"ray-operator {op.name}: leadership lost, stopping")
                    lost.set()
                    process.stop()
        threading.Thread(target=keep, daemon=True, name="leader").start()
    if process.poller is not None:
        log.info(f"ray-operator {op.name}: managing {op.scope}; reading each cluster's Ray "
                 f"load every {args.ray_poll_seconds:g} s from {args.ray_address}")
    else:
        log.info(f"ray-operator {op.name}: managing {op.scope}; no Ray load adapter ("
                 + ("--no-ray-load" if args.no_ray_load else "the ray package is not "
                    "installed: pip install 'ray-operator[ray]'")
                 + "), so workers follow minWorkers/maxWorkers only")
    log.info(f"ray-operator {op.name}: engine {engine_build.describe()}; this process is "
             f"instance {op.state.install.instance if op.state.install else '-'}")
    process.run()
    if elector is not None:
        if lost.is_set():
            log.info(f"ray-operator {op.name}: stopped (leadership lost)")
            return 1  # the pod restarts and competes again
        elector.release()
    log.info(f"ray-operator {op.name}: stopped; its leases were released, so other "
             "installs may take its clusters over at once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
