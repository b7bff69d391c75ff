"""engine/ stays pure: no clock, randomness, I/O, OS or Kubernetes client (an AST check)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[2] / "engine"
FORBIDDEN_MODULES = {"time", "random", "os", "socket", "asyncio", "threading", "subprocess",
                     "kubernetes", "urllib", "http", "requests", "logging", "secrets", "uuid",
                     "sys", "io", "pathlib", "shutil"}
FORBIDDEN_CALLS = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"),
                   ("date", "today"), ("time", "time"), ("time", "monotonic")}


def modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def impurities(source: str, name: str = "<source>") -> list[str]:
    """Every import of a forbidden module and every forbidden call in `source`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        if set(names) & FORBIDDEN_MODULES:
            found.append(f"{name}:{node.lineno} imports {names}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name) and (owner.id, node.func.attr) in FORBIDDEN_CALLS:
                found.append(f"{name}:{node.lineno} calls {owner.id}.{node.func.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and (
                node.func.id in {"open", "print", "input"}):
            found.append(f"{name}:{node.lineno} calls {node.func.id}")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_engine_module_is_pure(path: Path) -> None:
    assert impurities(path.read_text(), path.name) == []


@pytest.mark.parametrize("source", [
    "import time\nx = time.time()\n",
    "from datetime import datetime\nx = datetime.now()\n",
    "import os.path\n",
    "from random import choice\n",
    "print('hello')\n",
])
def test_the_check_would_catch_a_clock_read(source: str) -> None:
    assert impurities(source) != []


def test_the_check_passes_pure_code() -> None:
    assert impurities("import math\nfrom datetime import UTC\nx = math.inf\n") == []
