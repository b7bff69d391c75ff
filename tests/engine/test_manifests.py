"""The pods and Service the operator creates: start commands, labels, owners."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import manifests, shell, spec
from tests.builders import raycluster


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        # Appended to the end of the line, --block reached `other-command` and the head
        # exited at once.
        ("ray start --head --port=6379; other-command",
         "ray start --head --port=6379 --block; other-command"),
        ("ulimit -n 65536; ray start --head", "ulimit -n 65536; ray start --head --block"),
        ("ray start --head && echo up", "ray start --head --block && echo up"),
        ("ray start --head | tee /tmp/log", "ray start --head --block | tee /tmp/log"),
        ("ray start --head\nsleep 1", "ray start --head --block\nsleep 1"),
        ("ray start --head # starts Ray", "ray start --head --block # starts Ray"),
        ("echo 'ray start; now'", "echo 'ray start; now'"),
        ("ray start --head --block; x", "ray start --head --block; x"),
        ("ray stop", "ray stop"),
    ],
)
def test_block_goes_on_the_ray_start_invocation_itself(command: str, expected: str) -> None:
    assert shell.blocking(command) == expected


WORDS = st.sampled_from(["ray", "start", "stop", "--head", "echo", "'a; b'", '"c | d"', "x=1"])
SEPARATORS = st.sampled_from(["; ", " && ", " || ", " | ", "\n", " & "])


@given(st.lists(st.tuples(st.lists(WORDS, min_size=1, max_size=5), SEPARATORS), max_size=5))
def test_blocking_only_adds_the_flag_and_is_idempotent(
        parts: list[tuple[list[str], str]]) -> None:
    command = "".join(" ".join(words) + sep for words, sep in parts)
    once = shell.blocking(command)
    assert once.replace(" --block", "") == command.replace(" --block", "")
    assert shell.blocking(once) == once


def test_the_head_script_blocks_on_ray_start_and_keeps_what_follows() -> None:
    obj = raycluster(headStartRayCommands=["ray stop", "ray start --head --port=6379; touch up"])
    s = spec.from_raycluster(obj)
    script = manifests.start_script(s, s.head, "head")
    assert script.endswith("ray start --head --port=6379 --block; touch up")


def test_the_operator_labels_are_the_ones_a_pod_carries() -> None:
    s = spec.from_raycluster(raycluster())
    pod = manifests.pod(s, s.pod_types["worker-node"], name="p", role="worker",
                        resources={"CPU": 1})
    labels = pod["metadata"]["labels"]
    assert labels["ray-cluster-name"] == "example-cluster"
    assert labels["ray-node-type"] == "worker"
    assert "cluster.ray.io/component" not in labels  # only the head joins the Service
    assert pod["metadata"]["ownerReferences"][0]["uid"] == s.uid
