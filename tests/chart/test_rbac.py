"""The RBAC the chart renders grants exactly what the operator declares it uses
(driver/permissions.py), in exactly the namespaces the rendered operator will manage: the
scope is computed by the process's own flag parser and scope resolution from the rendered
Deployment's args and environment."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as s

from adapters.__main__ import parse
from driver.permissions import RULES
from engine import scopes
from tests.chart.helm import render

Grant = tuple[str, str, str, str]  # namespace ("*" = all), API group, resource, verb
SA = "ray-operator-serviceaccount"


def declared(namespaces: set[str]) -> set[Grant]:
    return {(ns, r.group, r.resource, verb) for ns in namespaces for r in RULES for verb in r.verbs}


def granted(docs: list[dict[str, Any]], sa_namespace: str) -> set[Grant]:
    """What the ServiceAccount may do, from the roles bound to it."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d
             for d in docs if d["kind"] in ("Role", "ClusterRole")}
    out: set[Grant] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if {"kind": "ServiceAccount", "name": SA, "namespace": sa_namespace} not in binding[
                "subjects"]:
            continue
        ref = binding["roleRef"]
        where = binding["metadata"].get("namespace")
        role = roles[(ref["kind"], where if ref["kind"] == "Role" else None, ref["name"])]
        scope = where or "*"
        for rule in role["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    out |= {(scope, group, resource, verb) for verb in rule["verbs"]}
    return out


def operator_scope(deployment: dict[str, Any]) -> scopes.Scope:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    args = parse(container["args"])
    env = {}
    for var in container.get("env", []):
        source = var.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        env[var["name"]] = (deployment["metadata"]["namespace"]
                            if source == "metadata.namespace" else var.get("value", ""))
    return scopes.resolve(namespace=args.namespace, watch=args.watch_namespace, env=env)


NAMESPACES = s.sampled_from(["default", "ops", "ray", "team-a", "team-b"])


@settings(max_examples=60, deadline=None)
@given(namespaced=s.booleans(), watch=s.lists(NAMESPACES, unique=True, max_size=3),
       leader=s.booleans(), operator_ns=NAMESPACES, release_ns=NAMESPACES)
def test_rbac_covers_exactly_the_declared_permissions_in_the_operators_scope(
    namespaced: bool, watch: list[str], leader: bool, operator_ns: str, release_ns: str,
) -> None:
    docs = render({"operatorOnly": True, "namespacedOperator": namespaced,
                   "watchNamespaces": watch, "operatorNamespace": operator_ns,
                   "operator": {"leaderElection": leader}}, namespace=release_ns)
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    home = deployment["metadata"]["namespace"]
    scope = operator_scope(deployment)
    if scope.namespaces is None:
        expected = declared({"*"})
        assert not namespaced and not watch
    else:
        # Leader election keeps its Lease in the operator's own namespace.
        expected = declared(set(scope.namespaces) | ({home} if leader else set()))
        assert not [d for d in docs if d["kind"].startswith("Cluster")]  # nothing cluster-wide
    assert granted(docs, home) == expected
    assert not any(g[2] == "pods/exec" for g in expected)
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == SA
