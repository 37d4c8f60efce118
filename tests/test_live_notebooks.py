"""The live notebook path in a real browser: JupyterLab, as Binder and ``make lab`` run it.

A JupyterLab server from the project's environment (127.0.0.1, a free port, a token) serves
a throw-away copy of the repository, committed to a fresh git repository, with the
JupyterLab settings of ``binder/overrides.json``; Debian's Chromium drives it headless. The
tests open chapter 1 and chapter 9 (Part III) as notebooks, run all their cells, and check
what a reader sees:

* no cell raised;
* MyST renders: the ``prf:`` blocks are styled admonitions, no ``:::{prf:...}`` text is left;
* a live slider typed to a value that is not one of its pre-rendered stops draws a new
  figure (its bytes match none of the static page's frames), shown at its natural size;
* saving a chapter (what JupyterLab's autosave does) and closing it leaves
  ``git status --porcelain chapters/`` empty;
* a notebook saved with its outputs and reopened without running shows its last figure, not
  "Error displaying widget: model not found".

Chapter 9 trains 30 networks on MNIST when its run cache is empty (4 to 5 minutes on two
cores; its figures only read the runs). The kernels therefore get a warm ``FLATLIB_CACHE``:
under ``make test`` a copy of the cache the strict build (``tests/conftest.py``) has just
filled in this session, otherwise one filled here once before JupyterLab starts (that run
is the chapter's own training and takes those minutes; ``FLATBOOK_LIVE_CACHE=DIR`` starts
from the runs in the cache ``DIR`` instead, e.g. ``~/.cache/flatlib``). With
the warm cache chapter 9 spends its time on loading MNIST and drawing the 15 frames of its
tile slider; it runs in a second tab while chapter 1 is checked.

Screenshots go to ``test-artifacts/live_*.png``. Run these tests alone with ``-m live``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT

pytestmark = pytest.mark.live

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
CHAPTER = "chapters/01_stability.md"
PART3 = "chapters/09_step_size_depth.md"
PART3_GRIDS = ("step_size_depth_identity_quick", "step_size_depth_he_quick")
RUN_TIMEOUT_MS = 900_000  # generous: two cores shared with other work; typically ~1-2 minutes
COPY_IGNORE = shutil.ignore_patterns(
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
    ".ipynb_checkpoints",
)


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not path:
        pytest.fail(
            "Debian's chromium is needed for the browser tests: `apt-get install chromium` "
            "(`make test` does this when run as root), or set CHROMIUM=/path/to/chromium"
        )
    return path


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-c", "user.name=flatbook", "-c", "user.email=flatbook@localhost", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def part3_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``FLATLIB_CACHE`` holding every run chapter 9 reads (see the module docstring)."""
    cache = tmp_path_factory.mktemp("live-cache")
    # The strict build of this session, if it ran, and FLATBOOK_LIVE_CACHE (a run cache to
    # start from, only read), else nothing: the missing runs are made below.
    sources = sorted(tmp_path_factory.getbasetemp().glob("book*/src/.flatlib-cache/sweeps"))
    if os.environ.get("FLATBOOK_LIVE_CACHE"):
        sources.append(Path(os.environ["FLATBOOK_LIVE_CACHE"]).expanduser() / "sweeps")
    for grid in PART3_GRIDS:
        for sweeps in sources:
            if (sweeps / grid).is_dir():
                shutil.copytree(sweeps / grid, cache / "sweeps" / grid, dirs_exist_ok=True)
    warm = (
        "from flatlib.experiments import step_size_depth as ssd\n"
        "for init in ('identity', 'he'):\n"
        "    ssd.run_chapter(init, progress=False)\n"
    )
    env = dict(os.environ, FLATLIB_CACHE=str(cache), FLATLIB_MODE="quick", OMP_NUM_THREADS="1")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", warm], env=env, capture_output=True, text=True, timeout=3600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    print(f"chapter 9's run cache ready in {time.perf_counter() - start:.0f} s")
    return cache


@dataclass
class Lab:
    url: str
    token: str
    root: Path

    def page_url(self, path: str) -> str:
        return f"{self.url}lab/tree/{path}?token={self.token}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, part3_cache: Path) -> Iterator[Lab]:
    """JupyterLab over a committed copy of the repository, with Binder's settings."""
    base = tmp_path_factory.mktemp("lab")
    root = base / "repo"
    shutil.copytree(ROOT, root, ignore=COPY_IGNORE)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "snapshot")
    dirs = {n: base / n for n in ("runtime", "config", "data", "ipython", "app", "user", "ws")}
    for d in dirs.values():
        d.mkdir()
    # The app settings Binder installs (postBuild), plus no "Jupyter news?" pop-up.
    shutil.copy(ROOT / "binder" / "overrides.json", dirs["app"] / "overrides.json")
    news = dirs["user"] / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    token = uuid.uuid4().hex
    env = dict(
        os.environ,
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        IPYTHONDIR=str(dirs["ipython"]),
        FLATLIB_CACHE=str(part3_cache),
        FLATLIB_MODE="quick",
        OMP_NUM_THREADS="1",
    )
    env.pop("JUPYTER_PATH", None)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port=0",  # a free port, read back from the server's info file
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--ServerApp.terminals_enabled=False",
        f"--FileCheckpoints.checkpoint_dir={base / 'checkpoints'}",
        f"--LabApp.app_settings_dir={dirs['app']}",
        f"--LabApp.user_settings_dir={dirs['user']}",
        f"--LabApp.workspaces_dir={dirs['ws']}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.extension_manager=readonly",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = (base / "server.log").open("w")
    proc = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        url = None
        while url is None:
            assert proc.poll() is None, (base / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not start within 120 s"
            for info in dirs["runtime"].glob("jpserver-*.json"):
                data = json.loads(info.read_text() or "{}")
                if data.get("port"):
                    url = f"http://127.0.0.1:{data['port']}/"
            time.sleep(0.5)
        while True:
            try:
                with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
                time.sleep(0.5)
        yield Lab(url, token, root)
    finally:
        proc.terminate()  # the server shuts its kernels down
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        yield instance
        instance.close()


# ----------------------------------------------------------------------------- JupyterLab

PANEL = """path => Array.from(window.jupyterapp.shell.widgets('main'))
  .find(w => w.context && w.context.path === path)"""

STATE = f"""path => {{
  const w = ({PANEL})(path);
  if (!w || !w.content || !w.content.model) return null;
  const session = w.sessionContext.session;
  const kernel = session && session.kernel;
  const cells = [];
  for (const c of w.content.model.cells) {{
    if (c.type !== 'code') continue;
    const outs = c.outputs.toJSON();
    cells.push({{
      count: c.executionCount,
      errors: outs.filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue),
    }});
  }}
  const running = Array.from(w.content.node.querySelectorAll('.jp-InputPrompt'))
    .some(p => p.textContent.includes('*'));
  return {{kernel: kernel ? kernel.status : null, running, cells, dirty: w.context.model.dirty}};
}}"""


class LabPage:
    """One browser tab on JupyterLab, driving it through its application object."""

    def __init__(self, browser: object, lab: Lab, first: str) -> None:
        self.lab = lab
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(lab.page_url(first), wait_until="load")
        self.page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell")
        self.wait_kernel(first)

    def open(self, path: str) -> None:
        """Open ``path`` with its default viewer (Binder's settings: .md as a notebook)."""
        self.page.evaluate(
            "async path => { await window.jupyterapp.commands.execute('docmanager:open', "
            "{path}); }",
            path,
        )
        self.wait_kernel(path)

    def wait_kernel(self, path: str) -> None:
        self.page.wait_for_function(
            f"path => {{ const s = ({STATE})(path); return s && s.kernel === 'idle'; }}",
            arg=path,
            timeout=180_000,
        )

    def activate(self, path: str) -> None:
        self.page.evaluate(
            f"path => window.jupyterapp.shell.activateById(({PANEL})(path).id)", path
        )

    def run_all(self, path: str) -> None:
        """Start "Run All Cells" on ``path`` (the command's promise would wait for the end)."""
        self.activate(path)
        self.page.evaluate(
            "() => { void window.jupyterapp.commands.execute('notebook:run-all-cells'); }"
        )
        # The prompts of the queued cells turn to [*] at once; wait until they have.
        self.page.wait_for_function(
            f"""path => {{ const s = ({STATE})(path);
              return s.running || s.kernel !== 'idle'
                || s.cells.every(c => c.count !== null); }}""",
            arg=path,
            timeout=60_000,
        )

    def wait_run(self, path: str) -> dict:
        """Wait for the last queued cell of ``path``; return its cells' counts and errors."""
        self.page.wait_for_function(
            f"path => {{ const s = ({STATE})(path); return s.kernel === 'idle' && !s.running; }}",
            arg=path,
            timeout=RUN_TIMEOUT_MS,
            polling=1000,
        )
        return self.page.evaluate(STATE, path)

    def panel(self, path: str) -> object:
        """The notebook's DOM node."""
        return self.page.evaluate_handle(f"path => ({PANEL})(path).node", path)

    def save_and_close(self, path: str) -> None:
        """Save (as autosave would), shut the kernel down and close the notebook's tab."""
        self.activate(path)
        self.page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        self.page.wait_for_function(f"path => !({STATE})(path).dirty", arg=path, timeout=60_000)
        self.page.evaluate(
            f"async path => {{ const w = ({PANEL})(path); await w.sessionContext.shutdown(); "
            "w.close(); }",
            path,
        )
        self.page.wait_for_function(f"path => !({PANEL})(path)", arg=path, timeout=60_000)


def assert_ran_cleanly(state: dict, path: str) -> None:
    errors = [e for cell in state["cells"] for e in cell["errors"]]
    assert not errors, f"{path}: cells raised {errors}"
    not_run = [i for i, cell in enumerate(state["cells"]) if cell["count"] is None]
    assert not not_run, f"{path}: code cells {not_run} did not run"


def assert_myst_renders(page: object, panel: object, kind: str) -> None:
    """The ``prf:`` blocks are MyST admonitions (jupyterlab-myst), not raw directive text."""
    page.wait_for_function(  # type: ignore[attr-defined]
        "([node, kind]) => Array.from(node.querySelectorAll('aside.myst-proof .myst-proof-title'))"
        ".some(t => t.textContent.trim().startsWith(kind))",
        arg=[panel, kind],
        timeout=60_000,
    )
    raw = page.evaluate(  # type: ignore[attr-defined]
        "node => Array.from(node.querySelectorAll('.jp-MarkdownCell .jp-RenderedMarkdown, "
        ".jp-MarkdownCell .myst')).map(e => e.innerText).filter(t => t.includes(':::{prf:'))",
        panel,
    )
    assert not raw, f"raw MyST directives on the page: {[t[:120] for t in raw]}"


def live_image_bytes(image: object) -> bytes:
    data = image.evaluate(  # type: ignore[attr-defined]
        """async img => {
          const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
          let s = ''; for (const b of buf) s += String.fromCharCode(b);
          return btoa(s);
        }"""
    )
    return base64.b64decode(data)


def static_frames(page: object, path: str, source: str) -> list[bytes]:
    """The pre-rendered frames in the ``text/html`` fallback of the cell whose code is
    ``source``."""
    html = page.evaluate(  # type: ignore[attr-defined]
        f"""([path, source]) => {{
          for (const c of ({PANEL})(path).content.model.cells) {{
            if (c.type === 'code' && c.sharedModel.getSource().trim() === source) {{
              return c.outputs.toJSON().map(o => (o.data || {{}})['text/html'] || '').join('');
            }}
          }}
          return '';
        }}""",
        [path, source],
    )
    payload = re.search(r'class="flatlib-frames">(.*?)</script>', html, re.S)
    assert payload, f"the output of {source!r} carries no static fallback"
    frames = json.loads(payload.group(1).replace("<\\/", "</"))["frames"]
    return [base64.b64decode(v) for v in frames.values()]


# ----------------------------------------------------------------------------- tests


def test_chapters_run_live_in_jupyterlab(browser: object, lab: Lab) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    view = LabPage(browser, lab, PART3)
    page = view.page
    try:
        # Part III first, in its own tab: it takes longest; chapter 1 is checked meanwhile.
        view.run_all(PART3)
        view.open(CHAPTER)
        view.run_all(CHAPTER)
        assert_ran_cleanly(view.wait_run(CHAPTER), CHAPTER)
        panel = view.panel(CHAPTER)
        assert_myst_renders(page, panel, "Definition")

        source = "flatlib.figures.stability.step_size_slider(curvatures=[1.0, 4.0])"
        frames = static_frames(page, CHAPTER, source)
        live = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .flatlib-live").first
        live.scroll_into_view_if_needed()
        image = live.locator("img.flatlib-live-frame")
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        assert live_image_bytes(image) in frames, "at a stop the live figure is the static frame"
        size = image.evaluate(
            "i => [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight]"
        )
        assert size[:2] == size[2:], f"the live figure is not at its natural size: {size}"

        before = image.get_attribute("src")
        readout = live.locator(".widget-readout").first
        readout.fill("0.3")  # step size eta: the stops are 0.125, 0.25, 0.375, ..., 0.55
        readout.press("Enter")
        page.wait_for_function(
            "([img, before]) => img.src !== before && img.complete && img.naturalWidth > 0",
            arg=[image.element_handle(), before],
            timeout=120_000,
        )
        assert readout.inner_text().strip() == "0.300"
        drawn = live_image_bytes(image)
        assert drawn[:8] == b"\x89PNG\r\n\x1a\n" and drawn not in frames, (
            "eta = 0.3 is no stop: the kernel must have drawn a new figure"
        )
        status = live.locator(".flatlib-live-status")
        assert not status.is_visible(), f"unexpected note: {status.inner_text()}"
        size = image.evaluate(
            "i => [i.naturalWidth, i.naturalHeight, i.clientWidth, i.clientHeight]"
        )
        assert size[:2] == size[2:], f"the live figure is not at its natural size: {size}"
        page.screenshot(path=str(ARTIFACTS / "live_01_stability.png"))
        live.screenshot(path=str(ARTIFACTS / "live_01_stability_slider.png"))
        view.save_and_close(CHAPTER)

        assert_ran_cleanly(view.wait_run(PART3), PART3)
        panel = view.panel(PART3)
        assert_myst_renders(page, panel, "Theorem")
        tiles = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .flatlib-live").last
        tiles.scroll_into_view_if_needed()
        image = tiles.locator("img.flatlib-live-frame")
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        tiles.screenshot(path=str(ARTIFACTS / "live_09_step_size_depth_slider.png"))
        page.screenshot(path=str(ARTIFACTS / "live_09_step_size_depth.png"))
        view.save_and_close(PART3)
        assert not view.errors, f"page errors: {view.errors}"
    finally:
        page.close()
    changed = git(lab.root, "status", "--porcelain", "chapters/")
    diff = git(lab.root, "diff", "--", "chapters/")[:3000]
    assert changed == "", f"opening, running, saving and closing changed the chapters:\n{diff}"


def test_saved_notebook_reopens_with_its_last_figure(browser: object, lab: Lab) -> None:
    """Run, save as .ipynb, reopen without running: the widget state saved with the notebook
    (``saveState`` in binder/overrides.json) shows the last figure."""
    path = "scratch/saved_slider.ipynb"
    (lab.root / "scratch").mkdir(exist_ok=True)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import flatlib\nflatlib.figures.stability.double_well_slider()"
            )
        ],
        metadata={
            "kernelspec": {
                "name": "python3",
                "display_name": "Python 3 (ipykernel)",
                "language": "python",
            }
        },
    )
    nbformat.write(nb, lab.root / path)
    view = LabPage(browser, lab, path)
    page = view.page
    try:
        view.run_all(path)
        assert_ran_cleanly(view.wait_run(path), path)
        image = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) img.flatlib-live-frame").first
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        last = live_image_bytes(image)
        view.save_and_close(path)
        saved = json.loads((lab.root / path).read_text())
        state = saved["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        assert any(m["model_name"] == "ImageModel" for m in state.values()), "no saved image"

        view.open(path)  # not run again: a fresh kernel knows no widget
        panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        image = panel.locator("img.flatlib-live-frame").first
        image.wait_for(timeout=60_000)
        page.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
        assert "model not found" not in panel.inner_text()
        assert live_image_bytes(image) == last, "the reopened notebook shows another figure"
        page.screenshot(path=str(ARTIFACTS / "live_saved_notebook.png"))
    finally:
        page.close()
