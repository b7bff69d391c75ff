"""The command line: exit codes and messages of docs/simulator.md."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml

from sim import cli
from sim.scenario import load

GOOD = {
    "name": "tiny",
    "duration": "60s",
    "timeline": [{"at": "0s", "applyFile": "c.yaml"}],
    "expect": [{"at": "50s", "cluster": "ray/example-cluster", "pods": 3}],
}


def write(tmp_path: Path, scenario: object) -> Path:
    cluster = (Path(cli.__file__).parent / "scenarios/clusters/example-cluster.yaml").read_text()
    (tmp_path / "c.yaml").write_text(cluster)
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(scenario))
    return path


def test_default_run_passes_and_writes_the_summary(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "summary.json"
    assert cli.main(["--quiet", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["scenario"] == "multi-cluster" and summary["passed"] is True


def test_list_names_every_bundled_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in cli.bundled())


def test_run_of_a_file_passes(tmp_path: Path) -> None:
    assert cli.main(["run", str(write(tmp_path, GOOD)), "--quiet"]) == 0


def test_a_failed_expectation_exits_1(tmp_path: Path) -> None:
    bad = {**GOOD, "expect": [{"at": "50s", "cluster": "ray/example-cluster", "pods": 9}]}
    assert cli.main(["run", str(write(tmp_path, bad)), "--quiet"]) == 1


@pytest.mark.parametrize(
    ("change", "field", "expected"),
    [
        ({"durration": "5s"}, "durration", "unknown field"),
        ({"duration": "soon"}, "duration", "expected a duration"),
        ({"seed": "x"}, "seed", "expected an integer"),
        ({"timeline": [{"at": "0s", "killPod": {"cluster": "ray/nope"}}]},
         "timeline[0].killPod.cluster", "expected a cluster applied earlier"),
        ({"timeline": [{"at": "0s", "restartOperator": "ghost"}]},
         "timeline[0].restartOperator", "expected one of the operators"),
        ({"timeline": [{"at": "0s", "applyFile": "missing.yaml"}]},
         "timeline[0].applyFile", "cannot read"),
    ],
)
def test_bad_input_exits_2_naming_file_field_and_expectation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, object], field: str,
    expected: str,
) -> None:
    path = write(tmp_path, {**GOOD, **change, "expect": []})
    assert cli.main(["validate", str(path)]) == 2
    assert cli.main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: {field}: {expected}" in err.replace("\n", " ")


def test_unreadable_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "/no/such/file.yaml"]) == 2
    assert "cannot be read" in capsys.readouterr().err


def test_plan_is_a_dry_run_comparable_with_rays_launches(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = Path(cli.__file__).parent / "scenarios/clusters/example-cluster.yaml"
    state = tmp_path / "state.json"
    state.write_text(json.dumps({
        "now": 100.0,
        "pods": [{"name": "h", "type": "rayHeadType", "phase": "Running"},
                 {"name": "w1", "type": "rayWorkerType", "idleSeconds": 0.0},
                 {"name": "w2", "type": "rayWorkerType", "idleSeconds": 0.0}],
        "load": {"pending": [{"resources": {"CPU": 1}, "count": 5}]},
    }))
    assert cli.main(["plan", str(cluster), "--state", str(state)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["launch"] == {"rayWorkerType": 1}  # maxWorkers 3 caps the five wanted
    assert plan["terminate"] == []
    assert any(a["type"] == "CreatePod" for a in plan["actions"])


def test_plan_runs_as_the_docs_show_it(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The state file of docs/simulator.md, given to the command written under it. (The
    next test writes the file's first, snake_case keys, which are still read.)"""
    root = Path(__file__).resolve().parents[2]  # the checkout (the package may be elsewhere)
    doc = (root / "docs/simulator.md").read_text()
    section = doc[doc.index("### Plan state"):]
    state = tmp_path / "state.json"
    state.write_text(section.split("```json\n", 1)[1].split("```", 1)[0])
    command = section.split("`python -m sim plan ", 1)[1].split("`", 1)[0].split()
    assert command[1:] == ["--state", "STATE.json"]
    assert cli.main(["plan", str(root / command[0]), "--state", str(state)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["launch"] == {"rayWorkerType": 2}  # 3 CPUs pending, one idle worker: +2
    assert plan["terminate"] == []


def test_plan_terminates_idle_workers_above_min(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cluster = Path(cli.__file__).parent / "scenarios/clusters/example-cluster.yaml"
    state = tmp_path / "state.json"
    state.write_text(json.dumps({
        "now": 1000.0,
        "pods": [{"name": "h", "type": "rayHeadType"}]
        + [{"name": f"w{i}", "type": "rayWorkerType", "idle_seconds": 600.0} for i in range(3)],
    }))
    assert cli.main(["plan", str(cluster), "--state", str(state)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [t["reason"] for t in plan["terminate"]] == ["idle"]


def test_plot_draws_live_and_desired_workers(tmp_path: Path) -> None:
    out = tmp_path / "workers.png"
    assert cli.main(["run", "head-kill", "--quiet", "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_bad_namespace_list_is_refused(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    scenario = {**GOOD, "expect": [],
                "operators": [{"name": "op", "scope": "namespaces", "namespaces": ["Bad_Ns"]}]}
    path = write(tmp_path, scenario)
    assert cli.main(["validate", str(path)]) == 2
    assert "operators[0].namespaces: ['Bad_Ns'] are not valid namespace names" in \
        capsys.readouterr().err


def test_list_prints_one_line_per_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["list"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == len(cli.bundled())


def test_grep_of_a_cluster_prefix_shows_exactly_that_clusters_log_lines(tmp_path: Path) -> None:
    """`kubectl logs <operator pod> | grep example-cluster2,ray`, as the docs say: every line
    about a cluster starts with `<name>,<namespace>:`, so the grep selects exactly its lines."""
    assert cli.main(["run", "forbidden-mix", "--quiet", "--logs", str(tmp_path)]) == 0
    lines = [line for f in sorted(tmp_path.glob("*.log")) for line in f.read_text().splitlines()]
    prefixes = {line.split(" ", 1)[0] for line in lines}
    assert prefixes == {"example-cluster,ray:", "example-cluster,team-a:"}
    wide = (tmp_path / "ray-operator.log").read_text().splitlines()
    about_ray = [line for line in wide if "example-cluster,ray" in line]
    assert about_ray and all(line.startswith("example-cluster,ray: ") for line in about_ray)
    assert any("OwnershipConflict" in line or "manages this cluster" in line for line in about_ray)


def refused(path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """The one-line error `validate` gives for `path` (exit 2, no traceback)."""
    assert cli.main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


UNTRUSTED: dict[str, tuple[bytes, str]] = {
    # Each gave a traceback with exit 1, ran for ever, or read until memory ran out.
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "is not UTF-8 text"),
    "nested": (b"a: " + b"[" * 100_000 + b"]" * 100_000, "nested"),
    "alias bomb": (b"a: &a [x, x, x, x, x, x, x, x, x, x]\n" + b"".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)), "has more than"),
    "huge": (b"name: x\n" + b"#" * (2 * 1024 * 1024), "larger than 1048576 bytes"),
    "absurd duration": (b"name: x\nduration: 100000000000000000000h\n",
                        "duration: expected a duration such as 90s"),
    "week and a day": (b"name: x\nduration: 192h\n", "duration: expected at most 7 days"),
    "outside its folder": (b"name: x\ntimeline: [{at: 0s, applyFile: ../../../../../dev/zero}]\n",
                           "expected a file under the scenario's directory"),
    "an operator namespace that is no name": (
        b"name: x\noperators: [{name: op, namespace: -ops, scope: namespace}]\n",
        "operators[0].namespace: namespace '-ops' must consist of"),
    "a count of 10**12": (b"name: x\ncluster: {nodes: [{name: n, count: 1000000000000}]}\n",
                          "count: expected an integer from 1 to 100000"),
}


@pytest.mark.parametrize("case", sorted(UNTRUSTED))
def test_untrusted_scenario_files_exit_2_naming_the_file(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    content, expected = UNTRUSTED[case]
    path = tmp_path / "s.yaml"
    path.write_bytes(content)
    err = refused(path, capsys)
    assert err.startswith(f"error: {path}: ") and expected in err, err


def test_apply_file_reads_only_regular_files(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    os.mkfifo(tmp_path / "fifo")  # opening it would wait for a writer for ever
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ntimeline: [{at: 0s, applyFile: fifo}]\n")
    assert "is not a regular file" in refused(path, capsys)


def test_a_fault_verb_that_is_a_mapping_is_named_not_a_crash(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Found by the scenario fuzzer: `verb: {}` raised TypeError (unhashable) in validate.
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ntimeline: [{at: 0s, apiFaults: {verb: {}}}]\n")
    assert "timeline[0].apiFaults.verb: expected one of" in refused(path, capsys)


def test_a_step_spelled_the_old_way_still_runs_with_a_deprecation_notice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundled = cli.bundled()["head-kill"]
    shutil.copytree(bundled.parent / "clusters", tmp_path / "clusters")
    old = bundled.read_text().replace("killPod:", "kill_pod:")
    assert "kill_pod:" in old
    path = tmp_path / "old.yaml"
    path.write_text(old)
    assert cli.main(["validate", str(path)]) == 0
    assert "step 'kill_pod' is deprecated: write 'killPod'" in capsys.readouterr().err
    assert load(path).timeline == load(bundled).timeline
