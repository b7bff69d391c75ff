"""The real control plane for the tests: built and started once per run, stopped at the end.

`scripts/control-plane` builds etcd, kube-apiserver, kube-controller-manager, kubectl and
helm from Go modules, and starts them with the sim kubelet. Outside CI a machine that cannot
build them skips the `realk8s` tests and says why; under `CI=true` that is a failure.
Operators run as the identity the chart gives them: its ServiceAccount and RBAC applied as
`helm template` renders them, and a TokenRequest token in their kubeconfig, never admin.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from adapters.kube import KubeApi

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "control-plane"
CRD = ROOT / "chart" / "ray" / "crds" / "cluster_crd.yaml"


class Plane:
    """A running control plane: its admin kubeconfig and its binaries."""

    def __init__(self, kubeconfig: Path, bins: Path, state: Path) -> None:
        self.kubeconfig = kubeconfig
        self.bins = bins
        self.state = state
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(config_file=str(kubeconfig),  # type: ignore[no-untyped-call]
                                    client_configuration=configuration)
        self.configuration = configuration
        self.api = KubeApi(k8s.ApiClient(configuration))
        self.core = k8s.CoreV1Api(k8s.ApiClient(configuration))

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                config: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bins / "kubectl"),
                               f"--kubeconfig={config or self.kubeconfig}", *args],
                              input=stdin, capture_output=True, text=True, timeout=120,
                              check=check)

    def restart(self, component: str, pause: float) -> None:
        """Stop one component and start it again `pause` seconds later."""
        subprocess.run([str(SCRIPT), "restart", component, "--state", str(self.state),
                        "--pause", str(pause)], check=True, capture_output=True, timeout=120)

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bins / "helm"), f"--kubeconfig={self.kubeconfig}",
                               *args], capture_output=True, text=True, timeout=300,
                              check=check, cwd=ROOT / "chart")

    def token_kubeconfig(self, namespace: str, account: str, path: Path) -> Path:
        """A kubeconfig that authenticates as ServiceAccount `account` (TokenRequest)."""
        token = self.kubectl("create", "token", account, "-n", namespace,
                             "--duration=2h").stdout.strip()
        with open(self.kubeconfig) as handle:
            admin = yaml.safe_load(handle)
        cluster = admin["clusters"][0]
        path.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": account,
            "clusters": [cluster],
            "users": [{"name": account, "user": {"token": token}}],
            "contexts": [{"name": account, "context": {"cluster": cluster["name"],
                                                       "user": account}}]}))
        return path


IDENTITY = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")


def install_identity(plane: Plane, *, release: str, namespace: str, values: list[str],
                     folder: Path) -> tuple[Path, dict[str, Any]]:
    """What `helm template` renders for an operator release: its ServiceAccount and RBAC
    applied, and a kubeconfig with that ServiceAccount's token. Returns the kubeconfig and
    the rendered Deployment (whose args and env the operator process is started with)."""
    rendered = plane.helm("template", release, "./ray", "-n", namespace, *values).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    plane.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(
        [d for d in docs if d["kind"] in IDENTITY]))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    account = deployment["spec"]["template"]["spec"]["serviceAccountName"]
    config = plane.token_kubeconfig(deployment["metadata"]["namespace"], account,
                                    folder / f"{release}-{namespace}.kubeconfig")
    return config, deployment


def operator_command(deployment: dict[str, Any], config: Path, metrics: int
                     ) -> tuple[list[str], dict[str, str]]:
    """The `ray-operator` command line and environment the Deployment's pod would run."""
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    namespace = deployment["metadata"]["namespace"]
    env = dict(os.environ)
    for var in container.get("env", []):
        field = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        env[var["name"]] = {"metadata.namespace": namespace,
                            "metadata.name": "ray-operator-0"}.get(field, var.get("value"))
    args = [a for a in container["args"] if not a.startswith("--metrics-port")]
    return ([sys.executable, "-m", "adapters", *args, "--kubeconfig", str(config),
             f"--metrics-port={metrics}"], env)


def built() -> Path:
    """Build (or find) the binaries; skip or fail the realk8s tests when that is impossible."""
    done = subprocess.run([str(SCRIPT), "build"], capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        why = (done.stdout + done.stderr).strip().splitlines()[-5:]
        message = "the control plane could not be built here: " + " | ".join(why)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Path(subprocess.run([str(SCRIPT), "bin"], capture_output=True, text=True,
                               check=True).stdout.strip())


def running(tmp: Path, *extra: str) -> Iterator[Plane]:
    bins = built()
    state, config = tmp / "state", tmp / "admin.kubeconfig"
    done = subprocess.run([str(SCRIPT), "up", "--kubeconfig", str(config), "--state", str(state),
                           "--crd", str(CRD), "--nodes", "2", *extra], capture_output=True,
                          text=True, timeout=600)
    if done.returncode != 0:
        subprocess.run([str(SCRIPT), "down", "--state", str(state)], timeout=120, check=False)
        pytest.fail(f"the control plane did not start:\n{done.stdout}{done.stderr}")
    try:
        yield Plane(config, bins, state)
    finally:
        subprocess.run([str(SCRIPT), "down", "--state", str(state)], timeout=120, check=False)


def kubectl_binary() -> str:
    """kubectl from PATH, else the one `scripts/control-plane build` built."""
    return shutil.which("kubectl") or str(built() / "kubectl")


def namespace(plane: Plane, name: str) -> str:
    """A fresh namespace whose default ServiceAccount exists (pods can be created)."""
    created = plane.kubectl("create", "namespace", name, check=False)
    if created.returncode != 0 and "AlreadyExists" not in created.stderr:
        raise AssertionError(created.stderr)
    for _ in range(300):
        if plane.kubectl("get", "serviceaccount", "default", "-n", name,
                         check=False).returncode == 0:
            return name
        time.sleep(0.1)
    raise AssertionError(f"no default ServiceAccount in {name}")


def decode(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def python() -> str:
    return sys.executable
