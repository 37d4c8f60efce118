"""A real browser over the built book: Debian's Chromium, headless, on localhost.

Checks what a reader sees: maths typeset by MathJax (no raw ``$$`` left), every image
loaded, theorem blocks rendered, no console errors, and a static slider that changes its
figure. Screenshots of the preface and a chapter go to ``test-artifacts/``.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, BuiltBook, toc_documents

pytestmark = pytest.mark.browser

ARTIFACTS = Path(os.environ.get("FLATBOOK_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "Debian's chromium is needed for the browser tests: `apt-get install chromium` "
            "(`make test` does this when run as root), or set CHROMIUM=/path/to/chromium"
        )
    return path


@pytest.fixture(scope="session")
def server(built_book: BuiltBook) -> Iterator[str]:
    assert built_book.returncode == 0, f"the book did not build:\n{built_book.tail()}"

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(built_book.html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Chromium for this module only: Playwright's sync API keeps an asyncio loop running in
    the main thread until it is closed, which later tests (live notebooks, widgets) need
    free."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


class Page:
    """A loaded page plus every console error and failed request it produced."""

    def __init__(self, browser: object, url: str) -> None:
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", lambda r: self.errors.append(f"failed: {r.url}"))
        self.page.on(
            "response",
            lambda r: self.errors.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None,
        )
        self.page.goto(url, wait_until="load")
        if self.page.locator("script[src*='mathjax']").count():
            self.page.wait_for_function(
                "() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                timeout=20000,
            )
            self.page.evaluate("() => MathJax.startup.promise")


@pytest.mark.parametrize("doc", toc_documents())
def test_page_renders(browser: object, server: str, built_book: BuiltBook, doc: str) -> None:
    source = (built_book.html / f"{doc}.html").read_text()
    view = Page(browser, f"{server}/{doc}.html")
    page = view.page
    try:
        if 'class="math' in source:
            assert page.locator("mjx-container").count() > 0, "maths was not typeset"
            assert page.locator("mjx-merror").count() == 0, "MathJax reported a TeX error"
        text = page.inner_text("article")
        assert "$$" not in text and "\\begin{" not in text, "raw LaTeX left on the page"
        broken = page.evaluate(
            "() => Array.from(document.images)"
            ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"
        )
        assert not broken, f"images that did not load: {broken}"
        if "prf:" in (ROOT / f"{doc}.md").read_text():
            assert page.locator("div.proof").count() > 0, "theorem blocks did not render"
            assert page.locator("div.proof p.admonition-title").first.is_visible()
        assert not view.errors, f"console errors: {view.errors}"
        if doc in ("preface", "chapters/01_stability"):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{doc.replace('/', '_')}.png"), full_page=True)
    finally:
        page.close()


def test_static_slider_switches_the_figure(browser: object, server: str) -> None:
    view = Page(browser, f"{server}/preface.html")
    page = view.page
    try:
        slider = page.locator(".flatlib-slider").first
        image = slider.locator("img.flatlib-frame")
        value = slider.locator(".flatlib-value").first
        before_src, before_value = image.get_attribute("src"), value.inner_text()
        rng = slider.locator("input.flatlib-range").first
        rng.fill(rng.get_attribute("max"))
        after_src = image.get_attribute("src")
        assert after_src != before_src, "moving the slider did not change the figure"
        assert value.inner_text() != before_value, "the slider's value label did not update"
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        assert not view.errors, f"console errors: {view.errors}"
    finally:
        page.close()
