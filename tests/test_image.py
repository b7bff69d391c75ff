"""The operator image's Dockerfile stays in step with the package (no docker daemon here)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_the_image_copies_every_package_and_runs_the_console_script_as_non_root() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \1$", dockerfile, flags=re.MULTILINE))
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    entry = re.search(r'^ENTRYPOINT \["([^"]+)"\]', dockerfile, flags=re.MULTILINE)
    assert entry is not None and entry.group(1) in project["project"]["scripts"]
    users = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("0", "root")
