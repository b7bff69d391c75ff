"""A podConfig is refused, naming its field, wherever the API server would refuse its pods.

Each case is a finding of a hostile-tenant review: before these checks, some crashed the
operator while building the pod (every restart again), and others were sent, answered 422
and retried without end.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from engine import spec
from engine.errors import InvalidSpec
from tests.builders import raycluster

WORKER = "spec.podTypes[1].podConfig"


def worker(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """The example cluster with its worker type's podConfig changed by `change`."""
    obj = raycluster()
    change(obj["spec"]["podTypes"][1]["podConfig"])
    return obj


def container(config: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = config["spec"]["containers"][0]
    return first


def problems(obj: dict[str, Any]) -> list[str]:
    with pytest.raises(InvalidSpec) as info:
        spec.from_raycluster(obj)
    return [str(p) for p in info.value.problems]


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "labels as a list": (lambda c: c["metadata"].update(labels=["a", "b"]),
                         f"{WORKER}.metadata.labels: expected an object"),
    "a label value that is no string": (lambda c: c["metadata"].update(labels={"a": 1}),
                                        f"{WORKER}.metadata.labels[a]: expected a string"),
    "a label value of 64 characters": (
        lambda c: c["metadata"].update(labels={"team": "x" * 64}),
        f"{WORKER}.metadata.labels[team]: "),
    "a label key with a space": (lambda c: c["metadata"].update(labels={"a b": "c"}),
                                 f"{WORKER}.metadata.labels[a b]: "),
    "env as a string": (lambda c: container(c).update(env="A=1"),
                        f"{WORKER}.spec.containers[0].env: expected a list"),
    "env as a list of strings": (lambda c: container(c).update(env=["A=1"]),
                                 f"{WORKER}.spec.containers[0].env[0]: expected an object"),
    "an env name with '='": (lambda c: container(c).update(env=[{"name": "A=B"}]),
                             f"{WORKER}.spec.containers[0].env[0].name: "),
    "an env value that is a number": (
        lambda c: container(c).update(env=[{"name": "A", "value": 1}]),
        f"{WORKER}.spec.containers[0].env[0].value: expected a string"),
    "a memory of 1e5000": (
        lambda c: container(c)["resources"]["limits"].update(memory="1e5000"),
        f"{WORKER}.spec.containers[0].resources.limits[memory]: '1e5000': expected an "
        "exponent"),
    "a cpu of 1e15000000": (
        lambda c: container(c)["resources"]["limits"].update(cpu="1e15000000"),
        f"{WORKER}.spec.containers[0].resources.limits[cpu]: "),
    "a request above its limit": (
        lambda c: container(c)["resources"]["requests"].update(cpu="2"),
        f"{WORKER}.spec.containers[0].resources.requests[cpu]: '2' is more than its limit"),
    "a container port of 99999": (
        lambda c: container(c).update(ports=[{"containerPort": 99999}]),
        f"{WORKER}.spec.containers[0].ports[0].containerPort: expected an integer <= 65535"),
    "a container name with capitals": (lambda c: container(c).update(name="Ray"),
                                       f"{WORKER}.spec.containers[0].name: 'Ray' must"),
    "two containers of one name": (
        lambda c: c["spec"]["containers"].append(copy.deepcopy(container(c))),
        f"{WORKER}.spec.containers[1].name: duplicate container name"),
    "a generateName with capitals": (
        lambda c: c["metadata"].update(generateName="Ray-Worker-"),
        f"{WORKER}.metadata.generateName: pod names 'example-cluster-Ray-Worker-'"),
    "an annotation of 300 KB": (
        lambda c: c["metadata"].update(annotations={"note": "x" * 300_000}),
        f"{WORKER}.metadata.annotations: 300004 bytes in all; Kubernetes allows 262144"),
    "the Service's selector label": (
        lambda c: c["metadata"].update(labels={"cluster.ray.io/component": "other-ray-head"}),
        f"{WORKER}.metadata.labels[cluster.ray.io/component]: is set by the operator"),
    "the operator's cluster label": (
        lambda c: c["metadata"].update(labels={"ray-cluster-name": "other"}),
        f"{WORKER}.metadata.labels[ray-cluster-name]: is set by the operator"),
    "owner references in the template": (
        lambda c: c["metadata"].update(ownerReferences=[]),
        f"{WORKER}.metadata.ownerReferences: not supported in a podConfig"),
    "another namespace": (lambda c: c["metadata"].update(namespace="kube-system"),
                          f"{WORKER}.metadata.namespace: expected the cluster's namespace"),
    "an empty pod spec": (lambda c: c.update(spec={}),
                          f"{WORKER}.spec.containers: expected a non-empty list"),
    "a restartPolicy of Sometimes": (lambda c: c["spec"].update(restartPolicy="Sometimes"),
                                     f"{WORKER}.spec.restartPolicy: expected one of"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_pod_the_api_server_would_refuse_is_refused_naming_its_field(case: str) -> None:
    change, expected = CASES[case]
    found = problems(worker(change))
    assert any(p.startswith(expected) for p in found), found


def test_a_head_service_port_of_99999_is_refused() -> None:
    obj = raycluster(headServicePorts=[{"name": "db", "port": 99999, "targetPort": 5432}])
    assert "spec.headServicePorts[0].port: expected an integer <= 65535, got 99999" in \
        problems(obj)


def test_two_service_ports_on_one_port_are_refused() -> None:
    obj = raycluster(headServicePorts=[{"name": "again", "port": 8265, "targetPort": 1}])
    assert any("both use 8265/TCP" in p for p in problems(obj))


def test_nesting_deeper_than_the_limit_is_refused_before_anything_walks_it() -> None:
    deep: dict[str, Any] = {}
    for _ in range(5_000):  # json.dumps and copy.deepcopy would overflow the stack
        deep = {"x": deep}
    obj = worker(lambda c: c["spec"].update(affinity=deep))
    (problem,) = problems(obj)
    assert problem.startswith(f"{WORKER}.spec.affinity.x.x")
    assert problem.endswith(": nested deeper than 64 levels")


def test_labels_annotations_and_a_generate_name_that_are_valid_pass_through() -> None:
    def change(c: dict[str, Any]) -> None:
        c["metadata"].update(labels={"team": "a", "example.com/tier": ""},
                             annotations={"note": "x" * 1000}, generateName="ray-w-")
        container(c).update(env=[{"name": "A", "value": "1"}],
                            ports=[{"containerPort": 8080, "name": "http"}])
    parsed = spec.from_raycluster(worker(change))
    assert parsed.pod_types["worker-node"].generate_name == "ray-w-"


def test_a_key_with_a_quote_or_bracket_is_quoted_in_the_path() -> None:
    """Found by the fuzz property: a request named `"` was shown as `requests["]`, a path
    no reader (or the property's grammar) can split."""
    obj = worker(lambda c: container(c)["resources"]["requests"].update({'"': "1", "a]": "1"}))
    found = problems(obj)
    assert any(p.startswith(f'{WORKER}.spec.containers[0].resources.requests["\\""]: ')
               for p in found), found
    assert any(p.startswith(f'{WORKER}.spec.containers[0].resources.requests["a]"]: ')
               for p in found), found
