"""The book as a reader meets it: strict build, executed chapters, launch paths."""

from __future__ import annotations

import json
import re
import urllib.parse

import nbformat
import pytest
from conftest import ROOT, BuiltBook, chapter_documents, toc_documents

pytestmark = pytest.mark.book


def test_book_builds_with_warnings_as_errors(built_book: BuiltBook) -> None:
    assert built_book.returncode == 0, f"strict build failed:\n{built_book.tail()}"
    assert "build succeeded" in built_book.log, built_book.tail()
    assert (built_book.html / "index.html").exists()


@pytest.mark.parametrize("doc", toc_documents())
def test_every_toc_page_is_built(built_book: BuiltBook, doc: str) -> None:
    page = built_book.html / f"{doc}.html"
    assert page.exists(), f"{doc} missing from the build:\n{built_book.tail()}"
    assert "<h1>" in page.read_text() or "<h1 " in page.read_text()


@pytest.mark.parametrize("doc", chapter_documents())
def test_chapter_executes_from_scratch(built_book: BuiltBook, doc: str) -> None:
    """Each notebook ran in this build (no cache), every code cell, with no error output."""
    path = built_book.executed / f"{doc}.ipynb"
    assert path.exists(), f"{doc} was not executed:\n{built_book.tail()}"
    nb = nbformat.read(path, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code, f"{doc} has no code cell"
    for cell in code:
        assert cell.get("execution_count"), f"{doc}: a cell did not run:\n{cell.source[:200]}"
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        assert not errors, f"{doc}: {errors[0].get('ename')}: {errors[0].get('evalue')}"
    printed = "".join(
        o.get("text", "") for cell in code for o in cell.get("outputs", []) if "text" in o
    )
    assert "mode=quick" in printed, f"{doc} does not print its mode and device"


@pytest.mark.parametrize("doc", chapter_documents())
def test_launch_paths(built_book: BuiltBook, doc: str) -> None:
    """Binder opens the .md (jupytext), Colab and the download button get an .ipynb."""
    page = (built_book.html / f"{doc}.html").read_text()
    links = [urllib.parse.unquote(h) for h in re.findall(r'href="([^"]+)"', page)]
    binder = [h for h in links if "mybinder.org" in h]
    assert binder and binder[0].endswith(f"urlpath=lab/tree/{doc}.md"), binder
    colab = [h for h in links if "colab.research.google.com" in h]
    assert colab and colab[0].endswith(f"/blob/gh-pages/_sources/{doc}.ipynb"), colab
    notebook = built_book.html / "_sources" / f"{doc}.ipynb"
    assert notebook.exists()
    nbformat.validate(nbformat.read(notebook, as_version=4))


def test_execution_table_lists_every_chapter(built_book: BuiltBook) -> None:
    table = (built_book.html / "appendix" / "execution.html").read_text()
    for doc in chapter_documents():
        assert doc in table, f"{doc} missing from the execution-status table"


def test_static_html_prefers_the_kernel_free_slider(built_book: BuiltBook) -> None:
    """The HTML builder must pick the pre-rendered fallback, not a dead widget view."""
    page = (built_book.html / "preface.html").read_text()
    assert 'class="flatlib-slider"' in page
    assert "application/vnd.jupyter.widget-view+json" not in page


def test_chapters_import_flatlib_as_a_package() -> None:
    for path in [*ROOT.glob("chapters/*.md"), ROOT / "preface.md"]:
        assert "sys.path" not in path.read_text(), f"{path.name} touches sys.path"


def test_binder_environment_opens_markdown_as_notebooks() -> None:
    settings = json.loads((ROOT / "binder" / "overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == "Jupytext Notebook"
    requirements = (ROOT / "binder" / "requirements.txt").read_text()
    assert "-r ../requirements-notebook.txt" in requirements or "jupytext" in requirements
    pinned = (ROOT / "requirements-notebook.txt").read_text()
    assert "jupytext" in pinned and "torch" in pinned


@pytest.mark.parametrize("doc", chapter_documents())
def test_each_figure_is_shown_once(built_book: BuiltBook, doc: str) -> None:
    """A figure returned by a cell appears once, not again when pyplot's backend flushes."""
    path = built_book.executed / f"{doc}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        images = [
            o["data"]["image/png"]
            for o in cell.get("outputs", [])
            if "image/png" in o.get("data", {})
        ]
        assert len(images) == len(set(images)), f"{doc}: a cell shows the same figure twice"
