"""Saving a chapter from JupyterLab gives back the same file.

JupyterLab opens ``chapters/*.md`` through jupytext and writes them back on every save and
autosave. A chapter that is not a fixed point of jupytext's reader and writer is rewritten
(e.g. a second blank line after the header disappears) and ``git status`` turns dirty the
moment a reader opens it. ``jupytext.toml`` makes the writer keep only the header the
chapters carry; the version in that header is the pinned jupytext, so saving leaves it too.
``tests/test_live_notebooks.py`` checks the same in a real JupyterLab.
"""

from __future__ import annotations

import copy
import difflib
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from conftest import ROOT
from jupytext.config import load_jupytext_config

CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))
NOTEBOOKS = [
    path
    for path in [*CHAPTERS, *sorted(ROOT.glob("*.md")), *sorted((ROOT / "appendix").glob("*.md"))]
    if path.read_text().startswith("---\njupytext:")
]
"""Every MyST notebook of the book: the chapters, and the preface (also a notebook)."""


def pinned(name: str) -> str:
    text = (ROOT / "requirements-notebook.txt").read_text()
    match = re.search(rf"^{re.escape(name)}==(\S+)", text, re.M)
    assert match, f"{name} is not pinned in requirements-notebook.txt"
    return match.group(1)


def what_jupyterlab_adds(nb: nbformat.NotebookNode) -> None:
    """Metadata and outputs a notebook collects in JupyterLab before it is saved."""
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.7"}
    nb.metadata["widgets"] = {
        "application/vnd.jupyter.widget-state+json": {
            "state": {},
            "version_major": 2,
            "version_minor": 0,
        }
    }
    for i, cell in enumerate(nb.cells):
        cell.metadata.update(
            {
                "trusted": True,
                "scrolled": True,
                "collapsed": False,
                "editable": True,
                "deletable": True,
                "jupyter": {"outputs_hidden": False},
                "execution": {"iopub.status.busy": "2026-01-01T00:00:00Z"},
            }
        )
        if cell.cell_type == "code":
            cell.execution_count = i + 1
            cell.outputs = [{"output_type": "stream", "name": "stdout", "text": "run\n"}]


def assert_same(path: Path, text: str, out: str) -> None:
    if out != text:
        diff = difflib.unified_diff(
            text.splitlines(), out.splitlines(), "on disk", "after a save", lineterm=""
        )
        pytest.fail(f"{path.name} is not a jupytext fixed point:\n" + "\n".join(list(diff)[:40]))


def test_every_chapter_is_checked() -> None:
    assert len(CHAPTERS) >= 14 and set(CHAPTERS) < set(NOTEBOOKS)
    for path in CHAPTERS:
        assert path.read_text().startswith("---\njupytext:"), f"{path.name}: no jupytext header"


def test_the_repository_configures_jupytext() -> None:
    config = load_jupytext_config(str(CHAPTERS[0]))
    assert config is not None, "jupytext.toml is not found from chapters/"
    assert config.notebook_metadata_filter == "kernelspec,jupytext,-all"
    for key in ("execution", "scrolled", "trusted", "jupyter"):
        assert f"-{key}" in config.cell_metadata_filter.split(",")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_saving_a_chapter_gives_back_the_same_file(path: Path) -> None:
    text = path.read_text()
    config = load_jupytext_config(str(path))
    nb = jupytext.reads(text, fmt="md:myst", config=config)
    assert_same(path, text, jupytext.writes(copy.deepcopy(nb), fmt="md:myst", config=config))
    what_jupyterlab_adds(nb)
    assert_same(path, text, jupytext.writes(nb, fmt="md:myst", config=config))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_header_names_the_pinned_jupytext(path: Path) -> None:
    header = re.search(r"jupytext_version: (\S+)", path.read_text())
    assert header, f"{path.name}: no jupytext_version in the header"
    assert header.group(1) == pinned("jupytext") == jupytext.__version__, (
        f"{path.name} was written by jupytext {header.group(1)}; requirements-notebook.txt "
        f"pins {pinned('jupytext')}, this environment has {jupytext.__version__}: a save "
        "would rewrite the header"
    )
