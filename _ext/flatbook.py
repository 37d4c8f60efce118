"""Sphinx glue for the Flat Minima book.

* Serves MathJax 3 from the book itself (``_static/mathjax``), copied from the
  ``django-static-mathjax`` wheel, so the maths renders offline, on a laptop without
  network and in the headless-browser tests, not only when a CDN is reachable.
* Removes duplicated inline scripts, so pages load without console errors.
* Points each chapter's Colab button at the executed ``.ipynb`` that the theme publishes
  in ``_sources/`` (Colab cannot open a MyST ``.md`` file); the hosting workflow pushes
  ``_build/html`` to the ``gh-pages`` branch, where that notebook lives.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError

PAGES_BRANCH = "gh-pages"
_MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output/chtml", "ui", "a11y", "adaptors")


def _mathjax_source() -> Path:
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        raise ExtensionError(
            "MathJax files not found: install the book's requirements "
            "(`pip install -r requirements.txt`, package django-static-mathjax)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax" / "es5"


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """Copy the MathJax 3 component files the pages load into ``_static/mathjax``."""
    if exception is not None or app.builder.format != "html":
        return
    src = _mathjax_source()
    dest = Path(app.outdir) / "_static" / "mathjax"
    for part in _MATHJAX_PARTS:
        source = src / part
        if source.is_dir():
            shutil.copytree(source, dest / part, dirs_exist_ok=True)
        elif source.is_file():
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / part)


def _rewrite_colab(buttons: list[dict[str, Any]], url: str) -> None:
    for button in buttons:
        if button.get("text") == "Colab":
            button["url"] = url
        _rewrite_colab(button.get("buttons", []), url)


def colab_to_notebook(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Make the Colab launch button open the executed notebook published with the book."""
    if not context.get("ipynb_source"):
        return
    repo = app.config.html_theme_options.get("repository_url", "").rstrip("/")
    colab = app.config.html_theme_options.get("launch_buttons", {}).get("colab_url", "")
    if not repo.startswith("https://github.com/") or not colab:
        return
    org_repo = repo.removeprefix("https://github.com/")
    url = f"{colab.rstrip('/')}/github/{org_repo}/blob/{PAGES_BRANCH}/_sources/{pagename}.ipynb"
    _rewrite_colab(context.get("header_buttons", []), url)


def dedupe_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Drop repeated inline scripts (sphinx-thebe registers its settings twice when the
    environment is read twice, which the browser reports as a redeclared constant)."""
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in context.get("script_files", []):
        attributes = getattr(script, "attributes", {})
        key = (
            str(getattr(script, "filename", script) or ""),  # inline: None or ""
            tuple(sorted((name, str(value)) for name, value in attributes.items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("build-finished", copy_mathjax)
    app.connect("html-page-context", colab_to_notebook, priority=900)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
