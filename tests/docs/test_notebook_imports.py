"""The notebooks use the simulator as a reader would: only names `sim` (or `sim.plots`, which needs matplotlib)
exports in `__all__`, so a refactoring inside `sim` never breaks them and what they show is public API."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
PUBLIC = ("sim", "sim.plots")


def _imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every `from sim... import name` in the notebook's code cells."""
    found = []
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sim":
                found += [(node.module or "", alias.name) for alias in node.names]
            if isinstance(node, ast.Import):
                found += [(alias.name, "*") for alias in node.names if alias.name.split(".")[0] == "sim"]
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_imports_only_exported_names(path: Path) -> None:
    imports = _imports(path)
    assert imports, f"{path.name} imports nothing from sim"
    private = [
        f"from {module} import {name}"
        for module, name in imports
        if module not in PUBLIC or name not in importlib.import_module(module).__all__
    ]
    assert not private, f"{path.name}: not exported by {' or '.join(PUBLIC)}: {private}"
