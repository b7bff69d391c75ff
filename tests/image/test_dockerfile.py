"""The operator image's Dockerfile stays in step with the package and the build script
(checked without a docker daemon; `test_build.py` builds and runs it)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent


def test_the_dockerfile_runs_the_console_script_as_non_root_from_a_chosen_base() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]', dockerfile, flags=re.MULTILINE)
    assert entry is not None and entry.group(1) in project["project"]["scripts"]
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"^ARG BASE=", dockerfile, flags=re.MULTILINE)
    assert dockerfile.count("FROM ${BASE}") == 2
    extras = re.search(r"^ARG EXTRAS=(\S+)", dockerfile, flags=re.MULTILINE)
    assert extras is not None and extras.group(1) in project["project"]["optional-dependencies"]


def test_the_build_context_is_the_wheels_the_script_gathers() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    ignore = (ROOT / ".dockerignore").read_text().split()
    script = (ROOT / "scripts" / "build-image").read_text()
    assert "COPY .image/wheels /wheels" in dockerfile
    assert ignore[-2:] == ["*", "!.image/wheels"]
    assert "--wheel-dir .image/wheels" in script and "--network none" in script
