"""Submit work a Ray cluster's head cannot run, and wait for it: the operator must add
workers. `python examples/burst.py --kubeconfig local.kubeconfig` finds the head of
RayCluster ray/local (its pod IP, port 6380), runs TASKS tasks of 1 CPU each for SECONDS
seconds, and prints where each ran."""

from __future__ import annotations

import argparse
import json
import socket
import time

import ray
from kubernetes import client, config


def head_address(kubeconfig: str, namespace: str, cluster: str, port: int) -> str:
    config.load_kube_config(config_file=kubeconfig)
    pods = client.CoreV1Api().list_namespaced_pod(
        namespace, label_selector=f"ray-cluster-name={cluster},ray-node-type=head")
    running = [p for p in pods.items if p.status.phase == "Running" and p.status.pod_ip]
    if not running:
        raise SystemExit(f"no running head pod of {namespace}/{cluster} yet")
    return f"{running[0].status.pod_ip}:{port}"


@ray.remote(num_cpus=1)
def work(seconds: float) -> dict[str, object]:
    """Where and when one task ran (its node's IP, wall-clock start and end)."""
    start = time.time()
    time.sleep(seconds)
    return {"host": socket.gethostname(), "node": ray.util.get_node_ip_address(),
            "start": start, "end": time.time()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", default="ray")
    p.add_argument("--cluster", default="local")
    p.add_argument("--port", type=int, default=6380)
    p.add_argument("--tasks", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--impossible", type=float, metavar="CPUS",
                   help="also submit a task asking for this many CPUs, which no pod type "
                        "holds (it never runs: `ray status` and the RayCluster show it)")
    args = p.parse_args()
    address = head_address(args.kubeconfig, args.namespace, args.cluster, args.port)
    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    started = time.monotonic()
    if args.impossible:
        work.options(num_cpus=args.impossible).remote(0.0)
        print(f"asked for a task of {args.impossible:g} CPUs", flush=True)
    results = ray.get([work.remote(args.seconds) for _ in range(args.tasks)])
    print(f"{len(results)} tasks done in {time.monotonic() - started:.1f} s on nodes "
          f"{sorted({str(r['node']) for r in results})}", flush=True)
    print("tasks: " + json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
