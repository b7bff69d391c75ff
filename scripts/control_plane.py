"""A real Kubernetes control plane on this machine, built from Go modules.

    scripts/control-plane build                              build (or find) the binaries
    scripts/control-plane up --kubeconfig FILE --state DIR   start etcd, kube-apiserver,
        [--crd FILE ...] [--port N] [--nodes N]              kube-controller-manager and a
                                                             fake kubelet; leave them running
    scripts/control-plane down --state DIR                   stop exactly what `up` started
    scripts/control-plane restart NAME --state DIR           stop one component, start it
        [--pause SECONDS]                                    again as it was (fault tests)
    scripts/control-plane bin                                print where the binaries are

`build` compiles kube-apiserver, kube-controller-manager and kubectl from k8s.io/kubernetes
(the helper module `tools/k8s`, every staging module replaced by its published version),
etcd (`tools/etcd`) and helm (`tools/helm`), and keeps them outside the repository in
`$RAY_OPERATOR_TOOLS_CACHE` (default `~/.cache/ray-operator/tools`), in a folder keyed by the
modules' go.mod and go.sum: a second run costs nothing, and a failed build leaves nothing
half-written there. `up` makes the certificates (a CA, the API server's serving certificate,
an admin client certificate in group system:masters, a service-account signing key), starts
each component in a process group of its own on 127.0.0.1, writes an admin kubeconfig and
returns once the API answers `/readyz`, the given CRDs are established, the controller
manager works (the `default` ServiceAccount exists) and the kubelet's node is Ready. The
controller manager runs the garbage collector and the namespace, service-account and
root-CA controllers; it starts after the CRDs, so the garbage collector knows them at once.
`down` stops only processes whose pid and start time are the ones `up` recorded.
Exit codes: 0 done, 1 a step failed (its output says which and why), 2 bad use (a port
taken, a state folder in use or left over, binaries not built).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
K8S_VERSION = "v1.37.2"
HELM_VERSION = "v4.3.2"
BINARIES = {  # helper module -> (packages, binaries)
    "k8s": (["k8s.io/kubernetes/cmd/kube-apiserver",
             "k8s.io/kubernetes/cmd/kube-controller-manager", "k8s.io/kubernetes/cmd/kubectl"],
            ["kube-apiserver", "kube-controller-manager", "kubectl"]),
    "etcd": (["go.etcd.io/etcd/server/v3"], ["etcd"]),
    "helm": (["helm.sh/helm/v4/cmd/helm"], ["helm"]),
}
CONTROLLERS = ("garbage-collector-controller,namespace-controller,serviceaccount-controller,"
               "root-ca-certificate-publisher-controller")


class Failed(Exception):
    """A step that failed; the message says which and why (exit code 1)."""


class Misuse(Exception):
    """Bad use: nothing was started (exit code 2)."""


def say(message: str) -> None:
    print(f"control-plane: {message}", flush=True)


def timed(what: str, action: Callable[[], Any]) -> Any:
    started = time.monotonic()
    result = action()
    say(f"{what} ({time.monotonic() - started:.1f} s)")
    return result


# -- build -----------------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get("RAY_OPERATOR_TOOLS_CACHE")
                or Path.home() / ".cache" / "ray-operator" / "tools")


def cache_dir() -> Path:
    """The folder of this checkout's binaries: keyed by every helper module's go.mod and
    go.sum, the versions stamped into them, and the Go version."""
    digest = hashlib.sha256(f"{K8S_VERSION} {HELM_VERSION} {_go_version()}".encode())
    for module in sorted(BINARIES):
        for name in ("go.mod", "go.sum"):
            digest.update((TOOLS / module / name).read_bytes())
    return cache_root() / f"{K8S_VERSION}-{digest.hexdigest()[:12]}"


def _go_version() -> str:
    try:
        return subprocess.run(["go", "env", "GOVERSION"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "no-go"


def _ldflags(module: str) -> str:
    if module == "k8s":
        major, minor = K8S_VERSION[1:].split(".")[:2]
        stamp = {"gitVersion": K8S_VERSION, "gitMajor": major, "gitMinor": minor,
                 "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z"}
        pairs = " ".join(f"-X {pkg}.{k}={v}" for k, v in stamp.items()
                         for pkg in ("k8s.io/component-base/version",
                                     "k8s.io/client-go/pkg/version"))
        return f"-s -w {pairs}"
    if module == "helm":
        return f"-s -w -X helm.sh/helm/v4/internal/version.version={HELM_VERSION}"
    return "-s -w"


def build() -> Path:
    if shutil.which("go") is None:
        raise Misuse("the go command is not installed (Go 1.26 builds the control plane)")
    target = cache_dir()
    for module, (packages, names) in BINARIES.items():
        if all((target / n).is_file() for n in names):
            say(f"{module}: {', '.join(names)} already built in {target}")
            continue
        timed(f"{module}: built {', '.join(names)} into {target}",
              lambda m=module, p=packages, n=names: _build(m, p, n, target))  # type: ignore[misc]
    return target


def _build(module: str, packages: list[str], names: list[str], target: Path) -> None:
    say(f"{module}: building {', '.join(names)} (go build in tools/{module}; a first build "
        "takes minutes)")
    cache_root().mkdir(parents=True, exist_ok=True)  # scratch beside the cache: one rename
    scratch = Path(tempfile.mkdtemp(prefix=f"build-{module}-", dir=cache_root()))
    try:
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod -buildvcs=false"}
        out = f"{scratch}/" if len(packages) > 1 else f"{scratch}/{names[0]}"  # else: "server"
        done = subprocess.run(["go", "build", "-trimpath", "-ldflags", _ldflags(module), "-o",
                               out, *packages], cwd=TOOLS / module, env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-30:])
            raise Failed(f"{module}: go build failed (exit {done.returncode}):\n{tail}")
        built = {p.name: p for p in scratch.iterdir()}
        missing = [n for n in names if n not in built]
        if missing:
            raise Failed(f"{module}: go build made no {', '.join(missing)} (got {sorted(built)})")
        target.mkdir(parents=True, exist_ok=True)
        for name in names:  # rename: a binary in the cache is always a whole one
            os.replace(built[name], target / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def binaries() -> Path:
    folder = cache_dir()
    missing = [n for _, names in BINARIES.values() for n in names if not (folder / n).is_file()]
    if missing:
        raise Misuse(f"not built: {', '.join(missing)} (run scripts/control-plane build)")
    return folder


# -- certificates ----------------------------------------------------------------------------


def _pki(folder: Path) -> None:
    """A CA, the API server's serving certificate, an admin client certificate and the
    service-account signing key, as files in `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    later = now + datetime.timedelta(days=365)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def save(name: str, private: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        (folder / f"{name}.key").write_bytes(private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (folder / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def name(common: str, org: str = "") -> x509.Name:
        parts = [x509.NameAttribute(NameOID.COMMON_NAME, common)]
        if org:
            parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
        return x509.Name(parts)

    ca_key = key()
    ca = (x509.CertificateBuilder().subject_name(name("ray-operator-test-ca"))
          .issuer_name(name("ray-operator-test-ca")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now)
          .not_valid_after(later)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    save("ca", ca_key, ca)

    def issue(file: str, subject: x509.Name, usage: x509.ObjectIdentifier,
              sans: list[x509.GeneralName] | None = None) -> None:
        private = key()
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca.subject)
                   .public_key(private.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(later)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        save(file, private, builder.sign(ca_key, hashes.SHA256()))

    issue("serving", name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, [
        x509.DNSName("localhost"), x509.DNSName("kubernetes"),
        x509.DNSName("kubernetes.default"), x509.DNSName("kubernetes.default.svc"),
        x509.DNSName("kubernetes.default.svc.cluster.local"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1"))])
    issue("admin", name("admin", "system:masters"), ExtendedKeyUsageOID.CLIENT_AUTH)
    sa = key()
    (folder / "sa.key").write_bytes(sa.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    (folder / "sa.pub").write_bytes(sa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def kubeconfig(server: str, pki: Path) -> str:
    def data(name: str) -> str:
        return base64.b64encode((pki / name).read_bytes()).decode()
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "control-plane",
        "clusters": [{"name": "control-plane", "cluster": {
            "server": server, "certificate-authority-data": data("ca.crt")}}],
        "users": [{"name": "admin", "user": {"client-certificate-data": data("admin.crt"),
                                             "client-key-data": data("admin.key")}}],
        "contexts": [{"name": "control-plane", "context": {"cluster": "control-plane",
                                                           "user": "admin"}}],
    }, indent=2)


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_taken(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _start_time(pid: int) -> str:
    """The process's start time since boot (/proc/PID/stat field 22): with the pid, who it is."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


class Plane:
    """The processes of one `up`, recorded in STATE/pids.json as they start."""

    def __init__(self, state: Path) -> None:
        self.state = state
        self.record = state / "pids.json"
        self.started: list[dict[str, Any]] = []

    def start(self, name: str, args: list[str], cwd: Path | None = None
              ) -> subprocess.Popen[bytes]:
        log = open(self.state / f"{name}.log", "wb")  # noqa: SIM115 - the child keeps it
        cwd = cwd or self.state
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=cwd)
        self.started = [e for e in self.started if e["name"] != name]  # a restart
        self.started.append({"name": name, "pid": proc.pid, "started": _start_time(proc.pid),
                             "command": args[0], "args": args, "cwd": str(cwd)})
        self.record.write_text(json.dumps(self.started, indent=2))
        return proc

    def alive(self, name: str) -> None:
        for entry in self.started:
            if entry["name"] == name and _start_time(entry["pid"]) != entry["started"]:
                tail = (self.state / f"{name}.log").read_text(errors="replace")[-2000:]
                raise Failed(f"{name} exited; the end of {self.state / (name + '.log')}:\n{tail}")


def stop(state: Path, only: str | None = None) -> list[str]:
    """Stop the recorded processes (or the one named `only`) that are still the ones
    started (pid and start time), last started first; return what was stopped."""
    record = state / "pids.json"
    if not record.is_file():
        return []
    entries = json.loads(record.read_text())
    stopped = []
    for entry in reversed(entries):
        if only is not None and entry["name"] != only:
            continue
        if _halt(entry):
            stopped.append(f"{entry['name']} (pid {entry['pid']})")
    if only is None:
        record.unlink()
    return stopped


def _halt(entry: dict[str, Any]) -> bool:
    """SIGTERM the process group, SIGKILL after 15 s; never a pid that is someone else's."""
    pid = int(entry["pid"])
    if not entry["started"] or _start_time(pid) != entry["started"]:
        return False  # gone, or the pid now belongs to another process: never signalled
    quiet = contextlib.suppress(ProcessLookupError, ChildProcessError, PermissionError)
    with quiet:
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while _start_time(pid) == entry["started"] and time.monotonic() < deadline:
        time.sleep(0.1)
        with quiet:
            os.waitpid(pid, os.WNOHANG)
    if _start_time(pid) == entry["started"]:
        with quiet:
            os.killpg(pid, signal.SIGKILL)
    return True


def restart(state: Path, name: str, pause: float) -> None:
    """Stop one component of a running control plane, wait `pause` seconds, start it again
    with the same command line (how the fault tests stop the API server mid scale-up)."""
    record = state / "pids.json"
    entries = json.loads(record.read_text()) if record.is_file() else []
    entry = next((e for e in entries if e["name"] == name), None)
    if entry is None:
        raise Misuse(f"{state} runs no {name} (components: "
                     f"{', '.join(e['name'] for e in entries) or 'none'})")
    timed(f"{name} stopped", lambda: _halt(entry))
    time.sleep(pause)
    plane = Plane(state)
    plane.started = entries
    plane.start(name, entry["args"], Path(entry["cwd"]))
    say(f"{name} started again")


def _wait(what: str, check: Callable[[], bool], seconds: float, plane: Plane,
          name: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        plane.alive(name)
        try:
            if check():
                return
        except (OSError, urllib.error.URLError, subprocess.SubprocessError, ValueError):
            pass
        time.sleep(0.2)
    raise Failed(f"{what} not within {seconds:g} s; see {plane.state / (name + '.log')}")


def up(kubeconfig_path: Path, state: Path, crds: list[Path], port: int | None,
       nodes: int, compaction: float | None = None) -> None:
    bins = binaries()
    if (state / "pids.json").is_file():
        alive = [e for e in json.loads((state / "pids.json").read_text())
                 if e["started"] and _start_time(int(e["pid"])) == e["started"]]
        if alive:
            raise Misuse(f"{state} is in use: {', '.join(e['name'] for e in alive)} run there "
                         "(scripts/control-plane down --state it first)")
        raise Misuse(f"{state} is left over from an earlier run whose processes are gone "
                     "(scripts/control-plane down --state it, or remove it)")
    if port is not None and port_taken(port):
        raise Misuse(f"port {port} is taken")
    for crd in crds:
        if not crd.is_file():
            raise Misuse(f"--crd {crd}: no such file")
    state.mkdir(parents=True, exist_ok=True)
    state = state.resolve()
    plane = Plane(state)
    try:
        _up(plane, bins, kubeconfig_path, crds, port or free_port(), nodes, compaction)
    except BaseException:
        stopped = stop(state)
        if stopped:
            say(f"stopped what had started: {', '.join(stopped)}")
        raise


def _up(plane: Plane, bins: Path, kubeconfig_path: Path, crds: list[Path], api_port: int,
        nodes: int, compaction: float | None) -> None:
    state = plane.state
    pki = state / "pki"
    timed("certificates made", lambda: _pki(pki))
    client, peer = free_port(), free_port()
    plane.start("etcd", [
        str(bins / "etcd"), "--name=node0", f"--data-dir={state / 'etcd'}",
        "--unsafe-no-fsync", "--log-level=warn", "--auto-compaction-retention=1",
        f"--listen-client-urls=http://127.0.0.1:{client}",
        f"--advertise-client-urls=http://127.0.0.1:{client}",
        f"--listen-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
        f"--initial-cluster=node0=http://127.0.0.1:{peer}"])
    timed(f"etcd ready on 127.0.0.1:{client}", lambda: _wait(
        "etcd's /health", lambda: b"true" in urllib.request.urlopen(
            f"http://127.0.0.1:{client}/health", timeout=2).read(), 30, plane, "etcd"))
    plane.start("kube-apiserver", [
        str(bins / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{client}",
        "--bind-address=127.0.0.1", f"--secure-port={api_port}",
        f"--cert-dir={state / 'apiserver'}",
        f"--tls-cert-file={pki / 'serving.crt'}", f"--tls-private-key-file={pki / 'serving.key'}",
        f"--client-ca-file={pki / 'ca.crt'}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki / 'sa.pub'}",
        f"--service-account-signing-key-file={pki / 'sa.key'}",
        "--service-cluster-ip-range=10.0.0.0/24", "--authorization-mode=RBAC",
        "--allow-privileged=true", "--endpoint-reconciler-type=none", "--profiling=false",
        "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
        *([f"--etcd-compaction-interval={compaction:g}s"] if compaction else [])])
    server = f"https://127.0.0.1:{api_port}"
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    timed(f"kube-apiserver ready on {server}", lambda: _wait(
        "the API server's /readyz", lambda: urllib.request.urlopen(
            f"{server}/readyz", timeout=5, context=context).status == 200,
        120, plane, "kube-apiserver"))
    config = kubeconfig(server, pki)
    (state / "admin.kubeconfig").write_text(config)
    kubeconfig_path.parent.mkdir(parents=True, exist_ok=True)
    kubeconfig_path.write_text(config)
    kubectl = [str(bins / "kubectl"), f"--kubeconfig={state / 'admin.kubeconfig'}"]
    for crd in crds:
        timed(f"{crd.name} established", lambda c=crd: _crd(kubectl, c))  # type: ignore[misc]
    plane.start("kube-controller-manager", [
        str(bins / "kube-controller-manager"), f"--kubeconfig={state / 'admin.kubeconfig'}",
        f"--authentication-kubeconfig={state / 'admin.kubeconfig'}",
        f"--authorization-kubeconfig={state / 'admin.kubeconfig'}",
        "--leader-elect=false", f"--controllers={CONTROLLERS}",
        f"--root-ca-file={pki / 'ca.crt'}", f"--service-account-private-key-file={pki / 'sa.key'}",
        "--use-service-account-credentials=false", "--bind-address=127.0.0.1",
        f"--secure-port={free_port()}"])
    timed("kube-controller-manager ready (the default ServiceAccount exists)", lambda: _wait(
        "the default ServiceAccount", lambda: subprocess.run(
            [*kubectl, "get", "serviceaccount", "default", "-n", "default"],
            capture_output=True, timeout=20).returncode == 0, 60, plane,
        "kube-controller-manager"))
    plane.start("kubelet", [sys.executable, "-m", "sim", "kubelet",
                            f"--kubeconfig={state / 'admin.kubeconfig'}", f"--nodes={nodes}"],
                cwd=ROOT)  # this repository's own kubelet, installed or not
    timed(f"the sim kubelet's {nodes} node(s) Ready", lambda: _wait(
        "the sim kubelet's nodes", lambda: len(subprocess.run(
            [*kubectl, "get", "nodes", "-l", "sim.ray.io/node", "-o", "name"],
            capture_output=True, text=True, timeout=20).stdout.split()) >= nodes,
        60, plane, "kubelet"))
    say(f"up: kubeconfig {kubeconfig_path}, state {state}")


def _crd(kubectl: list[str], crd: Path) -> None:
    done = subprocess.run([*kubectl, "apply", "-f", str(crd)], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise Failed(f"applying {crd} failed: {done.stderr.strip()}")
    done = subprocess.run([*kubectl, "wait", "--for=condition=Established", "--timeout=60s",
                           "-f", str(crd)], capture_output=True, text=True, timeout=90)
    if done.returncode != 0:
        raise Failed(f"{crd} was not established: {done.stderr.strip()}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/control-plane",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build the binaries (cached outside the repository)")
    sub.add_parser("bin", help="print the folder of the built binaries")
    start = sub.add_parser("up", help="start the control plane and leave it running")
    start.add_argument("--kubeconfig", required=True, type=Path)
    start.add_argument("--state", required=True, type=Path)
    start.add_argument("--crd", action="append", default=[], type=Path,
                       help="a CRD to establish before the controller manager starts")
    start.add_argument("--port", type=int, help="the API server's port (default: a free one)")
    start.add_argument("--nodes", type=int, default=1, help="nodes of the sim kubelet")
    start.add_argument("--compaction", type=float,
                       help="seconds between the API server's etcd compactions (default 300)")
    end = sub.add_parser("down", help="stop exactly what `up` started in --state")
    end.add_argument("--state", required=True, type=Path)
    again = sub.add_parser("restart", help="stop one component, then start it again")
    again.add_argument("component", help="etcd, kube-apiserver, kube-controller-manager or "
                                         "kubelet")
    again.add_argument("--state", required=True, type=Path)
    again.add_argument("--pause", type=float, default=0.0, help="seconds stopped")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        if args.command == "build":
            build()
        elif args.command == "bin":
            print(binaries())
            return 0
        elif args.command == "up":
            up(args.kubeconfig, args.state, args.crd, args.port, args.nodes, args.compaction)
        elif args.command == "restart":
            restart(args.state.resolve(), args.component, args.pause)
        else:
            stopped = stop(args.state)
            say(f"stopped {', '.join(stopped)}" if stopped else
                f"nothing of {args.state} was running")
    except Misuse as exc:
        say(f"error: {exc}")
        return 2
    except Failed as exc:
        say(f"failed: {exc}")
        return 1
    say(f"{args.command} done in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
