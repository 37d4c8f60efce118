"""Binder's environment (and a local one) has every package the chapters import.

Binder builds the image from ``binder/requirements.txt`` and then runs ``binder/postBuild``,
which installs flatlib with ``--no-deps``: nothing that pyproject.toml lists is installed
unless the requirements name it. These checks read the files only (no network, no venv):

* every requirement is pinned (``==``), and Binder and ``requirements.txt`` pin the same
  versions, which are the ones installed here;
* every top-level package imported by the code cells of chapters 1 and 5 and by any flatlib
  module is the standard library, flatlib itself, an optional extra of pyproject.toml, or
  provided by a distribution the Binder requirements name;
* JupyterLab, jupyterlab-myst, jupytext, ipywidgets and ipykernel are among them, with the
  JupyterLab settings (``binder/overrides.json``) that open the chapters as notebooks and
  save widget state.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import jupytext
import pytest
import tomllib
from conftest import ROOT

BINDER = ROOT / "binder"
CHAPTERS = ("chapters/01_stability.md", "chapters/05_theorem1.md")
READER_TOOLS = {
    "jupyterlab": "4.6.6",
    "jupyterlab-myst": "2.4.3",
    "jupytext": None,
    "ipywidgets": None,
    "ipykernel": None,
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path, seen: set[Path] | None = None) -> dict[str, str]:
    """``{canonical name: specifier}`` of a requirements file, following ``-r`` includes."""
    seen = set() if seen is None else seen
    assert path.is_file(), f"{path} is missing"
    assert path not in seen, f"{path} includes itself"
    seen.add(path)
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            out.update(requirements((path.parent / line.split(None, 1)[1]).resolve(), seen))
            continue
        if line.startswith("-") or line in (".", "-e ."):
            continue  # index options, the editable project itself
        match = re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)", line)
        assert match, f"{path.name}: cannot read {raw!r}"
        out[canonical(match.group(1))] = match.group(3).replace(" ", "")
    return out


def binder_requirements() -> dict[str, str]:
    return requirements(BINDER / "requirements.txt")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def dependency_name(spec: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec).group(0))


def guarded(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """An import inside ``try: ... except ImportError`` (or ``if TYPE_CHECKING:``)."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                names = ast.unparse(handler.type) if handler.type else ""
                if "ImportError" in names or "ModuleNotFoundError" in names:
                    return True
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def imported_modules(source: str, where: str) -> dict[str, str]:
    """``{top-level module: where}`` for every absolute, unguarded import in ``source``."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    tree = ast.parse("\n".join(lines), filename=where)
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module]
        else:
            continue
        if guarded(node, parents):
            continue
        for name in names:
            found.setdefault(name.split(".")[0], f"{where}:{node.lineno}")
    return found


def needed_imports() -> dict[str, str]:
    found: dict[str, str] = {}
    for chapter in CHAPTERS:
        nb = jupytext.read(ROOT / chapter)
        for i, cell in enumerate(nb.cells):
            if cell.cell_type == "code":
                found.update(imported_modules(cell.source, f"{chapter} cell {i}"))
    for path in sorted((ROOT / "flatlib").rglob("*.py")):
        found.update(imported_modules(path.read_text(), str(path.relative_to(ROOT))))
    return found


def test_every_requirement_is_pinned_and_binder_agrees_with_local() -> None:
    binder = binder_requirements()
    local = requirements(ROOT / "requirements.txt")
    loose = {name: spec for name, spec in binder.items() if not spec.startswith("==")}
    assert not loose, f"binder requirements that are not pinned with ==: {loose}"
    missing = sorted(set(binder) - set(local))
    assert not missing, f"requirements.txt lacks what Binder installs: {missing}"
    differ = {n: (binder[n], local[n]) for n in binder if binder[n] != local[n]}
    assert not differ, f"Binder and requirements.txt pin different versions: {differ}"
    for name, version in READER_TOOLS.items():
        assert name in binder, f"binder/requirements.txt must name {name}"
        if version:
            assert binder[name] == f"=={version}", f"{name} must be {version}: {binder[name]}"


def test_the_pins_are_what_this_environment_runs() -> None:
    wrong = {}
    for name, spec in binder_requirements().items():
        installed = importlib.metadata.version(name).split("+")[0]  # 2.13.0+cpu is 2.13.0
        if spec != f"=={installed}":
            wrong[name] = (spec, installed)
    assert not wrong, f"installed versions differ from the pins (run `make install`): {wrong}"


def test_postbuild_installs_flatlib_without_dependencies_so_binder_lists_them() -> None:
    postbuild = (BINDER / "postBuild").read_text()
    assert "pip install --no-deps -e ." in postbuild
    assert "overrides.json" in postbuild
    binder = binder_requirements()
    missing = [
        d for d in pyproject()["project"]["dependencies"] if dependency_name(d) not in binder
    ]
    assert not missing, f"pyproject dependencies Binder would not install: {missing}"


def test_binder_python_is_the_local_python() -> None:
    runtime = (BINDER / "runtime.txt").read_text().strip()
    assert runtime == f"python-{sys.version_info.major}.{sys.version_info.minor}", (
        f"binder/runtime.txt says {runtime}; the pins are tested on Python "
        f"{sys.version_info.major}.{sys.version_info.minor}"
    )


def test_binder_jupyterlab_settings() -> None:
    settings = json.loads((BINDER / "overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook", "the .md chapters must open as notebooks"
    manager = settings["@jupyter-widgets/jupyterlab-manager:plugin"]
    assert manager["saveState"] is True, "a saved notebook must carry its widgets' state"


def test_every_import_of_chapters_1_and_5_and_flatlib_is_declared() -> None:
    binder = binder_requirements()
    extras = {
        dependency_name(spec)
        for specs in pyproject()["project"].get("optional-dependencies", {}).values()
        for spec in specs
    }
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    needed = needed_imports()
    assert {"numpy", "torch", "flatlib"} <= set(needed), sorted(needed)
    for module, where in sorted(needed.items()):
        if module in sys.stdlib_module_names or module == "flatlib":
            continue
        dists = {canonical(d) for d in providers.get(module, [module])}
        if dists & (set(binder) | extras):
            continue
        undeclared[module] = (where, sorted(dists))
    assert not undeclared, f"imports Binder would not provide: {undeclared}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import numpy as np\nfrom scipy.optimize import x", {"numpy", "scipy"}),
        ("try:\n    import foo\nexcept ImportError:\n    foo = None", set()),
        ("from . import sibling\nfrom .x import y", set()),
        ("def f():\n    import ipywidgets as w", {"ipywidgets"}),
        ("%matplotlib inline\nimport pandas", {"pandas"}),
    ],
)
def test_import_scanner(source: str, expected: set[str]) -> None:
    assert set(imported_modules(source, "example")) == expected
