"""The operator's log lines: the cluster's prefix first, UTC ISO times, levels, or JSON."""

from __future__ import annotations

import io
import json
import re

import pytest

from adapters import logs
from adapters.__main__ import parse
from engine import actions as act

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"


def lines(fmt: str, *messages: str) -> list[str]:
    out = io.StringIO()
    log = logs.configure(fmt, out)
    for message in messages:
        log.info(message)
    return out.getvalue().splitlines()


def test_text_keeps_the_cluster_prefix_first_then_time_and_level() -> None:
    about = act.Log(cluster=("ray", "example-cluster"), level="WARNING", message="head lost")
    cluster, install = lines("text", about.line, "ray-operator dev: managing every namespace")
    assert re.fullmatch(rf"example-cluster,ray:{STAMP} WARNING head lost", cluster), cluster
    assert re.fullmatch(rf"{STAMP} INFO ray-operator dev: managing every namespace", install)


def test_json_gives_one_object_a_line_with_the_cluster_as_fields() -> None:
    about = act.Log(cluster=("ray", "example-cluster"), level="INFO", message="Adding 2 nodes.")
    first, second = (json.loads(line) for line in lines("json", about.line, "ERROR oops"))
    assert first.pop("time").endswith("Z")
    assert first == {"level": "INFO", "cluster": "example-cluster", "namespace": "ray",
                     "message": "Adding 2 nodes."}
    assert second["level"] == "ERROR" and "cluster" not in second


def test_the_format_is_a_flag_and_help_names_the_subcommands(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert parse(["--log-format", "json"]).log_format == "json"
    with pytest.raises(SystemExit):
        parse(["--help"])
    assert "load --address" in capsys.readouterr().out
