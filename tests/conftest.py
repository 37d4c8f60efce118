"""Shared fixtures: the book built once per test session, strictly and from scratch.

The build executes every chapter without the cache (``execute_notebooks: force``) in a
clean copy of the sources, with Sphinx warnings as errors, so it is at the same time the
notebook-execution test, the strict-build test and the input of the browser tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import settings

# CI and `make test` draw the same hypothesis examples every run (reproducible, no flaky
# reds); HYPOTHESIS_PROFILE=explore draws fresh random examples to hunt for new failures.
settings.register_profile("book", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "book"))

ROOT = Path(__file__).resolve().parents[1]
_COPY_IGNORE = shutil.ignore_patterns(
    ".venv",
    "_build",
    ".git",
    ".jupyter_cache",
    "__pycache__",
    "*.egg-info",
    ".pytest_cache",
    ".hypothesis",
    "test-artifacts",
    ".ruff_cache",
    "*.ipynb",
)


@dataclass(frozen=True)
class BuiltBook:
    """Result of one strict build: where it ran, its exit code, log and time."""

    source: Path
    returncode: int
    log: str
    seconds: float

    @property
    def html(self) -> Path:
        return self.source / "_build" / "html"

    @property
    def executed(self) -> Path:
        return self.source / "_build" / "jupyter_execute"

    def tail(self, lines: int = 60) -> str:
        """The end of the build log, without the kernels' start-up chatter."""
        kept = [line for line in self.log.splitlines() if "[IPKernelApp]" not in line]
        return "\n".join(kept[-lines:])


def toc_documents() -> list[str]:
    """Every document named in ``_toc.yml``, root first, without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    docs = [toc["root"]]
    for part in toc.get("parts", []):
        docs += [entry["file"] for entry in part["chapters"]]
    return docs


def chapter_documents() -> list[str]:
    """The TOC documents that are notebooks (MyST Markdown with a jupytext header)."""
    return [
        doc
        for doc in toc_documents()
        if (ROOT / f"{doc}.md").read_text().startswith("---\njupytext:")
    ]


def jupyter_book_command() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.exists():
        pytest.fail("jupyter-book is not installed next to this Python: run `make install`")
    return [str(exe)]


@pytest.fixture(scope="session")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> BuiltBook:
    """Copy the sources, force execution of every chapter, build with -W -n --keep-going."""
    source = tmp_path_factory.mktemp("book") / "src"
    shutil.copytree(ROOT, source, ignore=_COPY_IGNORE)
    config = source / "_config.yml"
    text = config.read_text()
    assert "execute_notebooks: cache" in text, "_config.yml must execute with a cache"
    config.write_text(text.replace("execute_notebooks: cache", "execute_notebooks: force"))
    env = dict(os.environ, FLATLIB_MODE="quick", FLATLIB_CACHE=str(source / ".flatlib-cache"))
    start = time.perf_counter()
    proc = subprocess.run(
        [*jupyter_book_command(), "build", str(source), "-W", "-n", "--keep-going"],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    return BuiltBook(
        source, proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start
    )
