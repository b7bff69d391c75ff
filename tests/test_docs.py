"""The front page and the docs: short, every link resolving, speaking only of this project,
and no module of the core or the simulator grown past what a reader takes in."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_a_front_page() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 200


def test_every_relative_link_resolves() -> None:
    broken = [(doc.name, target) for doc in DOCS
              for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text())
              if not target.startswith(("http://", "https://"))
              and not (doc.parent / target).exists()]
    assert broken == []


def test_the_repository_names_only_what_it_contains() -> None:
    found = subprocess.run(
        ["git", "grep", "-niE", r"issue [0-9]|\.\./shared|perf-anchor[s]|interfaces\.md"],
        cwd=ROOT, capture_output=True, text=True, check=False)
    assert found.stdout == ""


def test_no_module_of_the_engine_or_the_simulator_is_over_450_lines() -> None:
    long = {str(p.relative_to(ROOT)): n for folder in ("engine", "sim")
            for p in (ROOT / folder).glob("*.py")
            if (n := len(p.read_text().splitlines())) > 450}
    assert long == {}
