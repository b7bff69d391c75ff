"""No scenario file can crash the simulator's command line (proof by fuzzing).

Bundled scenarios are mutated as data (values replaced with hostile ones, keys added and
removed) and as text (bytes changed, inserted and cut): `sim validate` exits 0 or 2 and
never raises, and a scenario it accepts runs (its first minute) without raising.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import attrs
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim import cli
from sim.scenario import ScenarioError, load
from sim.world import World
from tests.fuzz import strategies
from tests.fuzz.conftest import EXAMPLES, TRIED

BUNDLED = {name: path.read_text() for name, path in cli.bundled().items()}
PARSED = {name: yaml.safe_load(text) for name, text in BUNDLED.items()}
FUZZ = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scenario folder with the bundled clusters, for applyFile."""
    root = tmp_path_factory.mktemp("scenarios")
    shutil.copytree(Path(cli.__file__).parent / "scenarios" / "clusters", root / "clusters")
    return root


@st.composite
def as_data(draw: st.DrawFn) -> bytes:
    data = copy.deepcopy(PARSED[draw(st.sampled_from(sorted(PARSED)))])
    paths = list(strategies.paths(data))[1:]
    for _ in range(draw(st.integers(1, 3))):
        strategies.mutate(data, (draw(st.sampled_from(paths)),
                                 draw(st.sampled_from(["replace", "delete", "add", "wrap"])),
                                 draw(strategies.KEYS), draw(strategies.HOSTILE)))
    try:
        return yaml.safe_dump(data).encode()
    except (ValueError, RecursionError):  # what YAML itself cannot write
        return b""


@st.composite
def as_text(draw: st.DrawFn) -> bytes:
    text = bytearray(BUNDLED[draw(st.sampled_from(sorted(BUNDLED)))].encode())
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, len(text)))
        kind = draw(st.sampled_from(["set", "insert", "cut"]))
        chunk = draw(st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from(
            [b"[", b"{", b"&a ", b"*a", b": ", b"\n  - ", b"\xff", b"999999999999999999999h",
             b"../../../../../dev/zero", b"[" * 5000])))
        if kind == "set":
            text[at:at + len(chunk)] = chunk
        elif kind == "insert":
            text[at:at] = chunk
        else:
            del text[at:at + len(chunk)]
    return bytes(text)


@FUZZ
@given(st.one_of(as_data(), as_text()))
def test_no_scenario_file_crashes_the_command_line(folder: Path, content: bytes) -> None:
    TRIED["scenario files"] += 1
    path = folder / "fuzzed.yaml"
    path.write_bytes(content)
    assert cli.main(["validate", str(path)]) in (0, 2)
    try:
        scenario = load(path)
    except ScenarioError:
        return
    TRIED["scenario files that run"] += 1
    World(scenario=attrs.evolve(scenario, duration=min(scenario.duration, 60.0))).run()
