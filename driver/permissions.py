"""Every Kubernetes API permission the operator uses, declared once.

The driver's calls are checked against this declaration by the tests (each call the
simulated operators make must be declared here, and each declared verb must be used by some
scenario), and the Helm chart and plain manifests render their RBAC from it, so
the operator asks for exactly what it uses. No `pods/exec`: our pods start Ray themselves.
`watch` goes with every `list`: the driver lists, then watches from the list's
resourceVersion.
"""

from __future__ import annotations

from typing import Any

from attrs import frozen


@frozen
class Rule:
    group: str  # API group ("" = core)
    resource: str  # plural, with a subresource after "/"
    verbs: tuple[str, ...]
    call: bool = True  # False: no call of the operator's, a condition of one (admission)


RULES: tuple[Rule, ...] = (
    # RayClusters: read and watch; patch the claim annotation; write the status.
    Rule("cluster.ray.io", "rayclusters", ("list", "watch", "patch")),
    Rule("cluster.ray.io", "rayclusters/status", ("patch",)),
    # Pods and the Service name their RayCluster as owner with blockOwnerDeletion, which the
    # OwnerReferencesPermissionEnforcement admission allows only to whom may update the
    # owner's finalizers (a real API server refused every pod without it).
    Rule("cluster.ray.io", "rayclusters/finalizers", ("update",), call=False),
    # Ray nodes: create and delete; get to re-observe after a 409.
    Rule("", "pods", ("get", "list", "watch", "create", "delete")),
    # The head Service: create, or get (whose is it?) and patch.
    Rule("", "services", ("get", "list", "watch", "create", "patch")),
    # Events on RayClusters (scaling, restarts, ownership conflicts).
    Rule("", "events", ("create",)),
    # One Lease per install and namespace: liveness for ownership claims; deleted on stop.
    # `get`: leader election among replicas of one install (adapters/leader.py).
    Rule("coordination.k8s.io", "leases", ("get", "list", "watch", "create", "patch", "delete")),
)

_SIM_VERBS = {"get": "get", "list": "list", "create": "create", "patch": "patch",
              "replace": "update", "delete": "delete", "patch_status": "patch"}


def allows(verb: str, resource: str) -> bool:
    """Whether a call (`verb` as the driver's `Api` names it) is declared."""
    if verb == "patch_status":
        resource = f"{resource}/status"
    wanted = _SIM_VERBS.get(verb, verb)
    return any(r.resource == resource and wanted in r.verbs for r in RULES)


def policy_rules() -> list[dict[str, Any]]:
    """The declaration as RBAC PolicyRules (for a Role or a ClusterRole)."""
    return [{"apiGroups": [r.group], "resources": [r.resource], "verbs": list(r.verbs)}
            for r in RULES]
