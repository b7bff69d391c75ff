"""The labels the operator puts on its pods and Service, and which of them are its own.

Pods and the head Service carry the legacy autoscaler's labels (`ray-cluster-name`, ...),
which the operator lists and watches by, and the head pod `cluster.ray.io/component`, which
the head Service selects. A podConfig may add labels of its own but never set these: a
worker labelled as another cluster's head would join that cluster's Service and receive its
Ray client and dashboard traffic. Everything under `cluster.ray.io/` is reserved as well.
"""

from __future__ import annotations

MANAGED_BY = "ray-operator"
LABEL_CLUSTER = "ray-cluster-name"
LABEL_KIND = "ray-node-type"
LABEL_TYPE = "ray-user-node-type"
LABEL_HASH = "ray-launch-config"
LABEL_COMPONENT = "cluster.ray.io/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
RESERVED_PREFIX = "cluster.ray.io/"

RESERVED = frozenset({LABEL_CLUSTER, LABEL_KIND, LABEL_TYPE, LABEL_HASH, LABEL_COMPONENT,
                      LABEL_MANAGED_BY})


def reserved(key: str) -> bool:
    """Whether a podConfig may not set the label `key`."""
    return key in RESERVED or key.startswith(RESERVED_PREFIX)
