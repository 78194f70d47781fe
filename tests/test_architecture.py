"""The import rules of docs/architecture.md, checked on every Python file (imports inside functions included).

GIMP's own Python on Windows, macOS, Flatpak and AppImage has no numpy or torch: what runs there (the plug-in,
and stylecore/protocol/ which install.py copies beside it) must import only the standard library, and the layers
below the front ends must not reach up into them.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
PLUGIN_DIR = REPO / "gimp_plugin" / "style-transfer"
PLUGIN_MODULES = {p.stem for p in PLUGIN_DIR.glob("*.py")}
ENGINE_LIBRARIES = {"numpy", "torch", "torchvision", "PIL", "onnx", "onnxruntime"}

# Which stylecore layers each layer may import (a layer may always import itself).
LAYERS = {
    "protocol": {"protocol"},
    "images": {"protocol", "atomic"},
    "models": {"protocol", "atomic"},
    "engine": {"protocol", "atomic", "images", "models"},
    "frontends": {"protocol", "atomic", "images", "models", "engine", "frontends", "package"},
}


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module a file imports, as absolute dotted names (relative imports resolved against its package)."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            # `from stylecore import x` names a module or a public name: both count as importing stylecore.x
            found += [(f"{module}.{alias.name}", node.lineno) for alias in node.names] if module == "stylecore" else []
            found += [] if module == "stylecore" else [(module, node.lineno)]
    return found


def layer_of(module: str) -> str | None:
    """The stylecore layer a module belongs to, or None for a module outside stylecore."""
    parts = module.split(".")
    if parts[0] != "stylecore":
        return None
    if len(parts) == 1 or parts[1] in ("__version__",):
        return "version"
    if parts[1] in LAYERS or parts[1] == "atomic":
        return parts[1]
    return "package"  # the public names of stylecore/__init__.py (Stylizer, stylize, ...)


def files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_the_layers_are_the_folders():
    for layer in LAYERS:
        assert (REPO / "stylecore" / layer / "__init__.py").is_file(), layer
    loose = {p.name for p in (REPO / "stylecore").glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "atomic.py"}, "every module belongs to a layer's folder"


@pytest.mark.parametrize("layer", [*LAYERS, "atomic"])
def test_each_layer_imports_only_what_it_may(layer):
    targets = [REPO / "stylecore" / "atomic.py"] if layer == "atomic" else files(f"stylecore/{layer}")
    allowed = LAYERS.get(layer, set()) | {layer, "version"}
    for path in targets:
        for module, line in imports(path):
            top = module.split(".")[0]
            where = f"{path.relative_to(REPO)}:{line} imports {module}"
            if layer in ("protocol", "atomic"):
                assert top in STDLIB or layer_of(module) in allowed, f"{where}: only the standard library may be imported here"
            elif top == "stylecore":
                assert layer_of(module) in allowed, f"{where}: the {layer} layer may import only {sorted(allowed)}"
            else:
                assert top in STDLIB or top in ENGINE_LIBRARIES, f"{where}: not a dependency of stylecore"


def test_the_package_init_is_standard_library_only():
    """install.py copies stylecore/__init__.py with protocol/: its public names load lazily, on first use."""
    for module, line in imports(REPO / "stylecore" / "__init__.py"):
        top = module.split(".")[0]
        assert top in STDLIB or module.startswith("stylecore."), f"__init__.py:{line} imports {module}"
    source = (REPO / "stylecore" / "__init__.py").read_text()
    tree = ast.parse(source)
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert all((n.module or "").split(".")[0] in STDLIB for n in top_level if isinstance(n, ast.ImportFrom))


def test_the_plugin_imports_only_the_standard_library_gi_and_protocol():
    for path in PLUGIN_DIR.glob("*.py"):
        for module, line in imports(path):
            top = module.split(".")[0]
            ok = top in STDLIB or top == "gi" or top in PLUGIN_MODULES or layer_of(module) in ("protocol", "version")
            assert ok, f"{path.name}:{line} imports {module}: GIMP's own Python may not have it"


def test_the_installer_imports_only_the_standard_library_and_protocol():
    for path in [REPO / "install.py", *files("installer")]:
        for module, line in imports(path):
            top = module.split(".")[0]
            ok = top in STDLIB or top == "installer" or layer_of(module) in ("protocol", "version")
            assert ok, f"{path.relative_to(REPO)}:{line} imports {module}: the installer runs before any dependency is installed"


def test_the_rules_catch_a_forbidden_import(tmp_path, monkeypatch):
    """The checker itself: a protocol module that imports numpy, and an engine module that imports a front end, fail."""
    fake_repo = tmp_path
    (fake_repo / "stylecore" / "protocol").mkdir(parents=True)
    bad = fake_repo / "stylecore" / "protocol" / "bad.py"
    bad.write_text("def f():\n    import numpy\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO", fake_repo)
    assert imports(bad) == [("numpy", 2)]
    assert "numpy" not in STDLIB and layer_of("numpy") is None
    upward = fake_repo / "stylecore" / "protocol" / "up.py"
    upward.write_text("from ..engine import stylizer\n")
    assert imports(upward) == [("stylecore.engine", 1)]
    assert layer_of("stylecore.engine") not in LAYERS["protocol"]
