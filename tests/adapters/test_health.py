"""The process's health endpoints and flags: a stuck loop fails /healthz, a taken port
is one line and exit code 2, and the bind address is the operator's to choose."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client as k8s

from adapters import __main__ as main
from adapters.kube import KubeApi
from adapters.process import Heartbeat, Process, Timers, health_server
from driver.operator import Operator
from sim import serve
from sim.api import Api, Client


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_heartbeat_is_stalled_only_past_its_limit() -> None:
    clock = Clock()
    heart = Heartbeat(60.0, clock)
    clock.now += 59.0
    assert heart.stalled() == 0.0
    clock.now += 2.0
    assert heart.stalled() == 61.0
    heart.beat()
    assert heart.stalled() == 0.0


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_healthz_fails_once_the_main_loop_stops_turning() -> None:
    """It answered ok whether or not the loop was alive: a liveness probe could never
    restart an operator stuck on one object."""
    op = Operator(name="h", api=Client(Api()))
    process = Process(api=KubeApi(k8s.ApiClient(k8s.Configuration(host="http://127.0.0.1:9"))),
                      operator=op, scope=op.scope, timers=Timers())
    clock = Clock()
    process.heartbeat = Heartbeat(60.0, clock)
    server = health_server(process, "127.0.0.1", 0)
    port = server.server_address[1]
    try:
        assert get(port, "/healthz") == (200, "ok\n")
        clock.now += 90.0
        assert get(port, "/healthz") == (503, "the main loop has not turned for 90 s\n")
    finally:
        server.shutdown()


@pytest.mark.parametrize(("flag", "address"), [
    ("127.0.0.1:8081", ("127.0.0.1", 8081)), (":9090", ("0.0.0.0", 9090)),
    ("[::1]:8080", ("::1", 8080)), (None, ("0.0.0.0", 8080))])
def test_the_bind_address_flag(flag: str | None, address: tuple[str, int]) -> None:
    args = argparse.Namespace(metrics_bind_address=flag, metrics_port=8080)
    assert main.bind_address(args) == address


def test_a_taken_metrics_port_is_one_line_and_exit_code_2(tmp_path: Path) -> None:
    config = tmp_path / "kubeconfig"
    serve.write_kubeconfig(config, serve.free_port())
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "adapters", "--kubeconfig", str(config),
             "--metrics-bind-address", f"127.0.0.1:{port}"],
            capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"ray-operator: cannot serve metrics and health on 127.0.0.1:{port}: "
        "Address already in use"]
