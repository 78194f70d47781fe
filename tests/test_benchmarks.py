"""The benchmark scripts still run against today's code: they answer --help, and every name they import exists.

Benchmarks are run by hand, so nothing else notices when a rename leaves one importing a name that is gone."""

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for p in (REPO / "benchmarks").glob("*.py") if p.name != "__init__.py")
OURS = ("stylecore", "benchmarks")


def _exists(module: str, name: str) -> bool:
    return hasattr(importlib.import_module(module), name) or importlib.util.find_spec(f"{module}.{name}") is not None


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_name_a_benchmark_imports_exists(script):
    imports = [
        node
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in OURS
    ]
    for node in imports:  # also those inside functions, which only a full run would reach
        missing = [a.name for a in node.names if not _exists(node.module, a.name)]
        assert not missing, f"{script.name}:{node.lineno} imports {missing} from {node.module}, which has no such name"


@pytest.mark.parametrize("script", [p for p in SCRIPTS if "def main(" in p.read_text()], ids=lambda p: p.name)
def test_each_benchmark_answers_help(script):
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0 and done.stdout.startswith("usage:"), done.stderr
