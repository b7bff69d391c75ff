"""The operator image builds offline and runs: `--help`, then the real operator in a container
with a read-only root filesystem as uid 1000 manages a cluster of `sim serve` on the host.

It needs docker (a reachable daemon, or `dockerd` to start a private one), and a base image:
RAY_OPERATOR_IMAGE_BASE names one, else `scripts/build-base-image` builds bookworm with
debootstrap. Where these are missing the test is skipped with the reason, except under CI
(`CI=true`), where `.ci/run` installs them and a skip would hide a broken image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from adapters.kube import KubeApi
from sim import serve
from sim.clusters import cluster_object
from tests.helpers import logged, until

ROOT = Path(__file__).parent.parent.parent
TAG = "ray-operator:test"

pytestmark = pytest.mark.slow


def missing(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must build the image, but {reason}")
    pytest.skip(reason)


def reachable(env: dict[str, str]) -> bool:
    return subprocess.run(["docker", "version"], env=env, capture_output=True,
                          timeout=30).returncode == 0


@pytest.fixture(scope="module")
def docker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """An environment whose `docker` reaches a daemon: the configured one, else a private
    dockerd with no bridge (the tests use the host network or none)."""
    if shutil.which("docker") is None:
        missing("no docker client (apt-get install docker.io)")
    env = dict(os.environ)
    if reachable(env):
        yield env
        return
    if shutil.which("dockerd") is None or os.geteuid() != 0:
        missing("no reachable docker daemon and no dockerd to start as root")
    state = tmp_path_factory.mktemp("dockerd")
    sock = state / "docker.sock"
    log = (state / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",
         "--data-root", str(state / "root"), "--exec-root", str(state / "exec"),
         "--pidfile", str(state / "dockerd.pid"), "-H", f"unix://{sock}"],
        stdout=log, stderr=subprocess.STDOUT)
    env["DOCKER_HOST"] = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 60
        while not reachable(env):
            if daemon.poll() is not None or time.monotonic() > deadline:
                missing(f"dockerd did not start: {(state / 'dockerd.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield env
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)
        log.close()
        _unmount_under(state)


def _unmount_under(root: Path) -> None:
    """dockerd leaves its network namespace mounted under its exec root when it stops;
    unmount what is left so the temporary directory can be removed."""
    for line in Path("/proc/self/mounts").read_text().splitlines():
        point = line.split()[1]
        if point.startswith(str(root)):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="module")
def image(docker: dict[str, str]) -> str:
    base = os.environ.get("RAY_OPERATOR_IMAGE_BASE", "local/bookworm-py:1")
    if "RAY_OPERATOR_IMAGE_BASE" not in os.environ:
        if shutil.which("debootstrap") is None or os.geteuid() != 0:
            missing("no base image: set RAY_OPERATOR_IMAGE_BASE or install debootstrap as root")
        subprocess.run([str(ROOT / "scripts" / "build-base-image"), base], env=docker,
                       check=True, capture_output=True, timeout=900)
    built = subprocess.run([str(ROOT / "scripts" / "build-image"), "--base", base, "--tag", TAG],
                           env=docker, capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, built.stdout + built.stderr[-4000:]
    return TAG


def run(docker: dict[str, str], *args: str, timeout: float = 120) -> str:
    done = subprocess.run(["docker", "run", "--rm", "--read-only", *args], env=docker,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_image_runs_the_operator_as_non_root_on_a_read_only_root(
    docker: dict[str, str], image: str
) -> None:
    assert "--watch-namespace" in run(docker, "--network", "none", image, "--help")
    assert run(docker, "--network", "none", "--entrypoint", "id", image,
               "-u").strip() == "1000"


def test_the_operator_in_the_image_manages_a_simulated_cluster(
    docker: dict[str, str], image: str, tmp_path: Path
) -> None:
    with serve.in_thread(serve.empty_world(startup_delay=0.3, startup_jitter=0.2,
                                                     namespaces=["ray"])) as port:
        config = tmp_path / "kubeconfig"
        serve.write_kubeconfig(config, port)
        config.chmod(0o644)
        api = KubeApi(k8s.ApiClient(k8s.Configuration(host=f"http://127.0.0.1:{port}")))
        api.create("rayclusters", "ray", cluster_object("ray", "alpha", 1, 3))
        name = f"ray-operator-test-{port}"
        container = subprocess.Popen(
            ["docker", "run", "--rm", "--read-only", "--network", "host", "--name", name,
             "-v", f"{config}:/config/kubeconfig:ro", image,
             "--kubeconfig", "/config/kubeconfig", "--operator-name", "image",
             "--metrics-port", "0", "--no-ray-load"],  # simulated heads run no Ray
            env=docker, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            def running() -> bool:
                """the containerized operator brings alpha up"""
                status = api.get("rayclusters", "ray", "alpha").get("status") or {}
                return status.get("phase") == "Running" and status.get("managedBy") == "image"
            until(running, seconds=90)
        finally:
            subprocess.run(["docker", "stop", "-t", "20", name], env=docker,
                           capture_output=True, timeout=60)
            output, _ = container.communicate(timeout=60)
        assert container.returncode == 0, output
        assert logged(output, "alpha,ray", "INFO", "claiming the cluster for image (epoch 1)"), \
            output
        assert "image: engine compiled (mypyc)" in output  # scripts/build-image's default
