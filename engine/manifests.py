"""The Kubernetes objects the operator creates: Ray pods and the head Service.

A pod starts Ray with its own container command, so the operator never execs
into pods. The first container's command becomes `/bin/bash -c --` with:
- head: the type's setup commands, then the head start commands with `--block`, so that
  Ray stopping on the head ends the container and the operator sees the head die;
- workers: the setup commands, then the worker start commands with `--block` in a loop, so
  a worker re-joins a restarted head by itself (the legacy operator re-ran start commands
  over `kubectl exec` for this).
Ray resources travel in `RAY_OVERRIDE_RESOURCES`, the head address in `RAY_HEAD_IP` (the
head Service, which also exposes the GCS port).

Labels are the legacy ones the autoscaler used, plus `app.kubernetes.io/managed-by`.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from attrs import field, frozen

from engine import events as ev
from engine import shell
from engine.labels import (
    LABEL_CLUSTER,
    LABEL_COMPONENT,
    LABEL_HASH,
    LABEL_KIND,
    LABEL_MANAGED_BY,
    LABEL_TYPE,
    MANAGED_BY,
)
from engine.spec import ClusterSpec, PodType


def pod_name(spec: ClusterSpec, pod_type: PodType, counter: int) -> str:
    return f"{pod_prefix(spec, pod_type)}{counter}"


def pod_prefix(spec: ClusterSpec, pod_type: PodType) -> str:
    """A pod's name without its counter: `<cluster>-<type's generateName>`."""
    return f"{spec.name}-{pod_type.generate_name}"


def owner_reference(spec: ClusterSpec) -> dict[str, Any]:
    return {
        "apiVersion": "cluster.ray.io/v1",
        "kind": "RayCluster",
        "name": spec.name,
        "uid": spec.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


@frozen(kw_only=True)
class PodTemplate:
    """Everything of a Pod manifest but its name, shared by one batch of creates."""

    metadata: Mapping[str, Any] = field(eq=False)
    spec: Mapping[str, Any] = field(eq=False)

    def manifest(self, name: str) -> dict[str, Any]:
        """The Pod for `name`; nested values are shared with the template (read-only)."""
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {**self.metadata, "name": name},
                "spec": self.spec}


def template(spec: ClusterSpec, pod_type: PodType, *, role: str,
             resources: Mapping[str, float]) -> PodTemplate:
    """The template of pods of `pod_type` in `role`, advertising `resources` to Ray."""
    manifest = pod(spec, pod_type, name="", role=role, resources=resources)
    meta = dict(manifest["metadata"])
    del meta["name"]
    return PodTemplate(metadata=meta, spec=manifest["spec"])


def pod(spec: ClusterSpec, pod_type: PodType, *, name: str, role: str,
        resources: Mapping[str, float]) -> dict[str, Any]:
    """A complete Pod manifest for one Ray node of `pod_type`."""
    config = pod_type.pod_config
    meta = dict(config.get("metadata") or {})
    meta.pop("generateName", None)
    labels = dict(meta.get("labels") or {})
    labels.update({
        LABEL_CLUSTER: spec.name,
        LABEL_KIND: role,
        LABEL_TYPE: pod_type.name,
        LABEL_HASH: pod_type.launch_hash,
        LABEL_MANAGED_BY: MANAGED_BY,
    })
    if role == ev.HEAD:
        labels[LABEL_COMPONENT] = spec.service_name
    meta.update({
        "name": name,
        "namespace": spec.namespace,
        "labels": labels,
        "ownerReferences": [owner_reference(spec)],
    })
    pod_spec = copy.deepcopy(dict(config.get("spec") or {}))
    containers = pod_spec.get("containers") or [{}]
    first = dict(containers[0])
    first["command"] = ["/bin/bash", "-c", "--"]
    first["args"] = [start_script(spec, pod_type, role)]
    env = [e for e in first.get("env") or [] if e.get("name") not in _ENV_NAMES]
    env.append({"name": "RAY_HEAD_IP", "value": spec.service_name})
    env.append({"name": "RAY_OVERRIDE_RESOURCES", "value": json.dumps(
        {k: _whole(v) for k, v in resources.items()}, sort_keys=True)})
    first["env"] = env
    pod_spec["containers"] = [first, *containers[1:]]
    pod_spec.setdefault("restartPolicy", "Never")
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": pod_spec}


_ENV_NAMES = frozenset({"RAY_HEAD_IP", "RAY_OVERRIDE_RESOURCES"})


def _whole(value: float) -> float:
    """A whole number as an int (`1.0` -> `1`): the spec gives ints, Ray reports floats, and
    a pod's manifest must not depend on which of the two its type's resources came from."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def start_script(spec: ClusterSpec, pod_type: PodType, role: str) -> str:
    setup = list(pod_type.setup_commands)
    if role == ev.HEAD:
        start = [shell.blocking(c) for c in spec.head_start_ray_commands]
        return "; ".join([*setup, *start])
    start = [shell.blocking(c) for c in spec.worker_start_ray_commands]
    loop = "while true; do " + "; ".join(start) + "; sleep 5; done"
    return "; ".join([*setup, loop])


def service(spec: ClusterSpec) -> dict[str, Any]:
    """The head Service `<cluster>-ray-head` (ClusterIP), owned by the RayCluster."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": spec.service_name,
            "namespace": spec.namespace,
            "labels": {LABEL_CLUSTER: spec.name, LABEL_MANAGED_BY: MANAGED_BY},
            "ownerReferences": [owner_reference(spec)],
        },
        "spec": {
            "selector": {LABEL_COMPONENT: spec.service_name},
            "ports": [p.to_dict() for p in spec.head_service_ports],
        },
    }
