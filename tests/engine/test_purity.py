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


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_engine_module_is_pure(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name.split(".")[0] for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        assert not set(names) & FORBIDDEN_MODULES, f"{path.name}:{node.lineno} imports {names}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if isinstance(owner, ast.Name):
                assert (owner.id, node.func.attr) not in FORBIDDEN_CALLS, (
                    f"{path.name}:{node.lineno} calls {owner.id}.{node.func.attr}"
                )
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in {"open", "print", "input"}, (
                f"{path.name}:{node.lineno} calls {node.func.id}"
            )


def test_the_check_would_catch_a_clock_read(tmp_path: Path) -> None:
    tree = ast.parse("import time\nx = time.time()\n")
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import)]
    assert imports[0].names[0].name in FORBIDDEN_MODULES
