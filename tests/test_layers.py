"""flatlib's floor plan: every module imports alone, imports only downward, and no cycles.

The layers, lowest first (a module may import from its own layer and those below):
``config``/``_validation``/``_lazy``, ``theory``, ``curvature``, ``nets``, ``experiments``,
``records``, ``figures``. Names starting with ``_`` stay inside their module, except the two
shared private modules ``flatlib._validation`` and ``flatlib._lazy``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "flatlib"
LAYERS = ("theory", "curvature", "nets", "experiments", "records", "figures")
SHARED_PRIVATE = {"flatlib._validation", "flatlib._lazy"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py")) if p.name != "__main__.py"}


def rank(module: str) -> int:
    """0 for the base modules, then 1 + the index of the module's layer in :data:`LAYERS`."""
    parts = module.split(".")
    if len(parts) > 1 and parts[1] in LAYERS:
        return 1 + LAYERS.index(parts[1])
    return 0


def flatlib_imports(path: Path) -> list[tuple[str, str | None, int]]:
    """``(module, imported name or None, line)`` for every flatlib import in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, None, node.lineno) for a in node.names if a.name.startswith("flatlib")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flatlib"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                if sub in MODULES:  # ``from flatlib.theory import linear`` imports a module
                    out.append((sub, None, node.lineno))
                else:
                    out.append((node.module, a.name, node.lineno))
    return out


def resolve(target: str) -> str:
    """The flatlib module a dotted import names (its longest known prefix)."""
    parts = target.split(".")
    while parts and ".".join(parts) not in MODULES:
        parts.pop()
    if not parts:
        raise AssertionError(f"{target} is not a flatlib module")
    return ".".join(parts)


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for target, _, _ in flatlib_imports(path):
            dep = resolve(target)
            if dep != mod and not mod.startswith(dep + "."):  # a package importing its parent
                edges[mod].add(dep)
    return edges


def test_layers_are_known() -> None:
    """Guards the other tests: the walk finds the layers and plenty of modules."""
    assert {m.split(".")[1] for m in MODULES if m.count(".") >= 1} >= set(LAYERS)
    assert len(MODULES) > 30


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_go_down(module: str) -> None:
    """No module imports from a layer above its own; only figures imports figures."""
    bad = []
    for target, _, line in flatlib_imports(MODULES[module]):
        dep = resolve(target)
        if rank(dep) > rank(module):
            bad.append(f"line {line}: {module} ({rank(module)}) imports {dep} ({rank(dep)})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    """Depth-first search over all flatlib imports (top level and inside functions)."""
    edges = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_across_modules(module: str) -> None:
    """``from flatlib.x import _y`` and ``x._y`` on an imported flatlib module are refused."""
    path = MODULES[module]
    bad = [f"line {line}: {target}.{name}" for target, name, line in flatlib_imports(path)
           if name is not None and name.startswith("_") and name != "__version__"]  # fmt: skip
    tree = ast.parse(path.read_text())
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("flatlib"):
            aliases |= {a.asname or a.name for a in node.names
                        if f"{node.module}.{a.name}" in MODULES}  # fmt: skip
        elif isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name.startswith("flatlib") and a.asname}
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            bad.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    private = [t for t, _, _ in flatlib_imports(path)
               if any(p.startswith("_") for p in resolve(t).split("."))
               and resolve(t) not in SHARED_PRIVATE]  # fmt: skip
    bad += [f"private module {t}" for t in private]
    assert not bad, f"{module} uses private names of other modules:\n" + "\n".join(bad)


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    """``python -c 'import M'`` for each module on its own (catches partial-import cycles)."""

    def run(module: str) -> tuple[str, int, str]:
        proc = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        return module, proc.returncode, proc.stderr[-600:]

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(run, sorted(MODULES)))
    failed = [f"{m}:\n{err}" for m, code, err in results if code != 0]
    assert not failed, "\n\n".join(failed)
