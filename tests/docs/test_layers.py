"""The dependency arrows of docs/architecture.md, read off every module's imports: `mn_deploy -> sim, backends ->
mn_deploy_core`; the core imports nothing of ours; the controller and the worker share only the wire
(`backends.protocol`) and Redis; the operator's client talks to the wire, never to the server."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("mn_deploy_core", "sim", "backends", "mn_deploy")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """Every module of ours that `path` imports, at any depth of its code."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        yield from (name for name in names if name.split(".")[0] in OURS)


def edges() -> list[tuple[str, str]]:
    return [
        (module_name(path), target)
        for package in OURS
        for path in sorted((ROOT / package).rglob("*.py"))
        for target in imports(path)
    ]


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


# (importer, imported, why not), each checked over every import edge; an allowed exception is named in `unless`.
FORBIDDEN = [
    ("mn_deploy_core", "sim", "the core is pure: it imports nothing of ours outside itself"),
    ("mn_deploy_core", "backends", "the core is pure: it imports nothing of ours outside itself"),
    ("mn_deploy_core", "mn_deploy", "the core is pure: it imports nothing of ours outside itself"),
    ("sim", "backends", "the simulator does not run the live world"),
    ("sim", "mn_deploy", "the application wires the simulator, not the other way"),
    ("backends", "sim", "the live world does not run the simulator"),
    ("backends", "mn_deploy", "the application wires the backends, not the other way"),
    ("backends.protocol", "backends.live", "the wire is shared; it runs nothing"),
    ("backends.redis", "backends.live", "stores do not know who drives them"),
    ("backends.live.worker", "backends.live.controller", "a worker shares only the wire with the controller"),
    ("backends.live.controller", "backends.live.worker", "the controller shares only the wire with workers"),
    ("mn_deploy.grpc_client", "backends.live", "the operator's client speaks the wire, not the server"),
    ("mn_deploy.deployment_cli", "backends.live", "the operator's client speaks the wire, not the server"),
]
ALLOWED = {("sim", "backends.memory")}


@pytest.mark.parametrize(("importer", "imported", "why"), FORBIDDEN, ids=[f"{a}-x->{b}" for a, b, _ in FORBIDDEN])
def test_no_module_imports_against_the_arrows(importer: str, imported: str, why: str) -> None:
    wrong = sorted(
        f"{source} imports {target}"
        for source, target in edges()
        if within(source, importer)
        and within(target, imported)
        and not any(within(source, a) and within(target, b) for a, b in ALLOWED)
    )
    assert not wrong, f"{why}: {wrong}"


def test_the_edges_are_read_at_all() -> None:
    """Guards the test above against passing on an empty graph."""
    found = edges()
    assert ("backends.live.controller.daemon", "backends.redis") in found
    assert any(within(s, "mn_deploy") and within(t, "backends.protocol") for s, t in found)


LIVE_PACKAGES = ("redis", "grpc", "google.protobuf")  # the `live` extra: a base install has none of them


def test_the_simulator_and_the_core_import_nothing_of_the_live_extra() -> None:
    """A base install runs simulations: importing every module of `sim` and of the core loads no live package."""
    program = (
        "import importlib, pkgutil, sys\n"
        "for package in ('mn_deploy_core', 'sim'):\n"
        "    for module in pkgutil.walk_packages(importlib.import_module(package).__path__, package + '.'):\n"
        "        importlib.import_module(module.name)\n"
        f"print(sorted(m for m in sys.modules if m.startswith({LIVE_PACKAGES!r})))\n"
    )
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]", f"live packages imported by sim or the core: {done.stdout}"


CORE_MODULE_LINES = 400
"""The most lines a module of the core may have: past that, it holds more than one concept (docs/architecture.md,
"The core's modules")."""


def test_no_module_of_the_core_is_over_its_size() -> None:
    sizes = {path.name: len(path.read_text().splitlines()) for path in (ROOT / "mn_deploy_core").glob("*.py")}
    assert len(sizes) > 10, "the core's modules are read at all"
    assert {name: n for name, n in sizes.items() if n > CORE_MODULE_LINES} == {}
