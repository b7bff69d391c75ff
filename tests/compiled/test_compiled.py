"""The compiled engine (mypyc, `setup.py`) decides exactly as the pure-Python one.

A compiled install of this checkout is built once (`scripts/compile-engine`, about 30 s).
The benchmark workloads then run on each build and must give the same events, the same
actions as JSON (manifests included) and the same final snapshot, byte for byte; every
bundled simulator scenario must leave the same trace; and the engine's, the simulator's and
the stateful suites pass on the compiled build. Without a C compiler or Python's headers
these tests skip, except under CI (`CI=true`), where a skip would hide a build that no
longer compiles or no longer decides alike.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _missing() -> str:
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        return "no C compiler (cc)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return "no Python.h (the Python development headers)"
    return ""


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = _missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must build the compiled engine, but there is {reason}")
        pytest.skip(reason)
    target = tmp_path_factory.mktemp("compiled")
    done = subprocess.run([str(ROOT / "scripts" / "compile-engine"), str(target)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    yield target


def _env(compiled: Path | None) -> dict[str, str]:
    """Only the build under test is importable first: the compiled install, or the checkout
    (PYTHONSAFEPATH: no script directory or current directory ahead of it)."""
    return {**os.environ, "PYTHONPATH": str(compiled or ROOT), "PYTHONSAFEPATH": "1"}


def _replay(compiled: Path | None, out: Path) -> list[str]:
    script = ROOT / "tests" / "compiled" / "replay.py"
    subprocess.run([sys.executable, str(script), str(out), "30", "40000"], check=True,
                   env=_env(compiled), cwd=out.parent)
    return out.read_text().splitlines()


def test_the_compiled_install_is_compiled(compiled: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "import engine.build as b; print(b.describe())"],
                          check=True, env=_env(compiled), cwd=compiled, capture_output=True,
                          text=True)
    assert done.stdout.strip() == "compiled (mypyc)"


def test_both_builds_decide_alike(compiled: Path, tmp_path: Path) -> None:
    pure = _replay(None, tmp_path / "pure.jsonl")
    native = _replay(compiled, tmp_path / "compiled.jsonl")
    assert pure[0] == '{"build": "pure Python"}'
    assert native[0] == '{"build": "compiled (mypyc)"}'
    assert len(pure) == len(native)
    first = next((i for i, (a, b) in enumerate(zip(pure, native, strict=True)) if i and a != b),
                 None)
    assert first is None, (
        f"line {first}:\n pure:     {pure[first][:300]}\n compiled: {native[first][:300]}")


def test_every_bundled_scenario_traces_alike(compiled: Path, tmp_path: Path) -> None:
    script = ROOT / "tests" / "compiled" / "scenarios.py"
    for build in ("pure", "compiled"):
        (tmp_path / build).mkdir()
        subprocess.run([sys.executable, str(script), str(tmp_path / build)], check=True,
                       env=_env(compiled if build == "compiled" else None), cwd=tmp_path)
    names = sorted(p.name for p in (tmp_path / "pure").iterdir())
    assert len(names) >= 10 and names == sorted(p.name for p in (tmp_path / "compiled").iterdir())
    for name in names:
        pure = (tmp_path / "pure" / name).read_text()
        assert pure, name
        assert (tmp_path / "compiled" / name).read_text() == pure, name


def test_the_suites_pass_compiled(compiled: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=append",
         "-m", "not patches_engine", "tests/engine", "tests/stateful", "tests/sim"],
        env=_env(compiled), cwd=ROOT, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "[100%]" in done.stdout
