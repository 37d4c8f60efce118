"""Slider figures that are live in Jupyter and still work in the static HTML book.

A static page has no kernel, so an ``ipywidgets`` slider there is blank or dead. Every
slider UI of the book is therefore a :class:`SliderFigure`, whose single output carries
two MIME types:

* ``application/vnd.jupyter.widget-view+json`` - the live widget (sliders above a
  figure), shown by Jupyter, JupyterLab, Binder and Colab;
* ``text/html`` - a kernel-free fallback: the figure pre-rendered at every slider stop,
  switched by plain HTML ``<input type="range">`` elements and a few lines of inline
  JavaScript. The book's ``_config.yml`` sets myst-nb's ``nb_mime_priority_overrides``
  so that the HTML builder picks this one.

The static page can only show its pre-rendered stops. With a kernel the sliders are
continuous: a numeric slider spans the range of its stops (``IntSlider``, ``FloatSlider``,
or ``FloatLogSlider`` for stops spread over more than a factor of 20), and any value in
range, dragged or typed into the readout, calls ``draw`` again (debounced, so a burst of
changes draws once; cached, so a value already seen is not drawn twice). At a stop the live
figure is the very frame of the static page. A figure drawn from stored runs only knows
its stops: when ``draw`` raises for a value between them, the sliders snap to the nearest
stops and a note under them says so. Non-numeric sliders keep their stops.
``continuous=False`` (or a collection of slider names) chooses which sliders are continuous.

A notebook saved with its outputs and reopened without a kernel shows the last figure when
the notebook carries its widget state: ``nbclient`` (the book's executed ``.ipynb``) stores
it, and JupyterLab does when its ``saveState`` setting is on (``binder/overrides.json``).
Example::

    def draw(eta):
        fig, ax = plt.subplots()
        ...
        return fig

    flatlib.figures.widgets.slider_figure(draw, {"eta": [0.1, 0.5, 0.9]}, defaults={"eta": 0.5})
"""

from __future__ import annotations

import asyncio
import base64
import html
import io
import itertools
import json
import math
import numbers
import uuid
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MAX_FRAMES = 96
LIVE_CACHE = 64
"""How many figures drawn live at values between the stops are kept (least recently used
goes first); the frames at the stops are always kept."""
LOG_RATIO = 20.0
"""Positive stops whose largest is at least this many times their smallest get a log slider."""

_SCRIPT = """
(function () {
  var root = document.getElementById(%(id)s);
  if (!root || root.dataset.ready) { return; }
  root.dataset.ready = "1";
  var frames = JSON.parse(root.querySelector("script.flatlib-frames").textContent);
  var img = root.querySelector("img.flatlib-frame");
  var inputs = root.querySelectorAll("input.flatlib-range");
  function update() {
    var key = [];
    inputs.forEach(function (inp) {
      var i = parseInt(inp.value, 10);
      key.push(i);
      var label = inp.parentNode.querySelector(".flatlib-value");
      label.textContent = frames.labels[inp.dataset.name][i];
    });
    img.src = "data:image/png;base64," + frames.frames[key.join(",")];
  }
  inputs.forEach(function (inp) { inp.addEventListener("input", update); });
})();
"""


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    if _is_number(a) and _is_number(b):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _nearest(stops: Sequence[Any], value: Any) -> int:
    """Index of the stop equal to ``value``, else of the numerically nearest one."""
    for i, stop in enumerate(stops):
        if _same(stop, value):
            return i
    if not _is_number(value) or not all(_is_number(s) for s in stops):
        return 0
    return min(range(len(stops)), key=lambda i: abs(float(stops[i]) - float(value)))


def _decimals(values: Sequence[Any]) -> int:
    """Fewest decimals (at most 6) that write every value exactly."""
    for d in range(7):
        if all(math.isclose(round(float(v), d), float(v), abs_tol=1e-12) for v in values):
            return d
    return 6


def _nice_step(span: float) -> float:
    """A power of ten giving a slider of 100 to 1000 steps over ``span``."""
    if span <= 0:
        return 1.0
    return 10.0 ** math.floor(math.log10(span / 100))


def _slider_kind(values: Sequence[Any], continuous: bool) -> str:
    """``int``, ``float`` or ``log`` (continuous over the stops' range) or ``stops``."""
    distinct = {float(v) for v in values} if all(_is_number(v) for v in values) else set()
    if not continuous or len(distinct) < 2:
        return "stops"
    lo, hi = min(distinct), max(distinct)
    if lo > 0 and hi / lo >= LOG_RATIO:
        return "log"
    return "int" if all(_is_int(v) for v in values) else "float"


class SliderFigure:
    """A figure driven by sliders, live in a kernel and pre-rendered for static HTML.

    Parameters
    ----------
    draw
        ``draw(**params) -> matplotlib.figure.Figure``; called once per slider stop for the
        static page, and with a kernel for any value a continuous slider is moved to.
    sliders
        Slider name -> the values it can take on the static page (its stops), in order.
    defaults
        Initial value of each slider, one of its stops (default: the middle stop).
    labels
        Slider name -> the label shown next to it (default: the name).
    dpi
        Resolution of the rendered frames.
    continuous
        Which sliders of the live widget take any value in the range of their stops:
        ``None``/``True`` every numeric one with two or more distinct stops, ``False`` none
        (the live sliders then switch between the stops like the static ones), or a
        collection of slider names.
    debounce
        Seconds of quiet after a slider change before the live figure is redrawn (when the
        kernel's event loop runs; else it is redrawn at once).
    """

    def __init__(
        self,
        draw: Callable[..., Figure],
        sliders: Mapping[str, Sequence[Any]],
        defaults: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        dpi: int = 80,
        continuous: bool | Collection[str] | None = None,
        debounce: float = 0.15,
    ) -> None:
        if not callable(draw):
            raise TypeError("draw must be a callable returning a matplotlib Figure")
        if not isinstance(sliders, Mapping) or not sliders:
            raise ValueError("sliders must be a non-empty mapping name -> list of stops")
        self.draw = draw
        self.stops: dict[str, list[Any]] = {}
        for name, values in sliders.items():
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise TypeError(f"sliders[{name!r}] must be a sequence of stops")
            if len(values) < 1:
                raise ValueError(f"sliders[{name!r}] must hold at least one stop")
            self.stops[name] = list(values)
        n_frames = 1
        for values in self.stops.values():
            n_frames *= len(values)
        if n_frames > MAX_FRAMES:
            raise ValueError(
                f"sliders span {n_frames} frames; at most {MAX_FRAMES} can be pre-rendered "
                "for the static book: use fewer stops"
            )
        defaults = dict(defaults or {})
        unknown = set(defaults) - set(self.stops)
        if unknown:
            raise ValueError(f"defaults name unknown sliders: {sorted(unknown)}")
        self.index: dict[str, int] = {}
        for name, values in self.stops.items():
            if name in defaults:
                matches = [i for i, v in enumerate(values) if v == defaults[name]]
                if not matches:
                    raise ValueError(f"defaults[{name!r}]={defaults[name]!r} is not a stop")
                self.index[name] = matches[0]
            else:
                self.index[name] = (len(values) - 1) // 2
        self.labels = {name: (labels or {}).get(name, name) for name in self.stops}
        self.dpi = dpi
        if continuous is None or isinstance(continuous, bool):
            live = set(self.stops) if continuous in (None, True) else set()
        elif isinstance(continuous, Collection) and not isinstance(continuous, (str, bytes)):
            live = set(continuous)
            if live - set(self.stops):
                raise ValueError(
                    f"continuous names unknown sliders: {sorted(live - set(self.stops))}"
                )
            numeric = {n for n in live if all(_is_number(v) for v in self.stops[n])}
            if live - numeric:
                raise ValueError(f"continuous sliders must be numeric: {sorted(live - numeric)}")
        else:
            raise TypeError("continuous must be None, a bool or a collection of slider names")
        self.kinds = {name: _slider_kind(v, name in live) for name, v in self.stops.items()}
        if not _is_number(debounce) or debounce < 0:
            raise ValueError(f"debounce must be a number of seconds >= 0, got {debounce!r}")
        self.debounce = float(debounce)
        self.values: dict[str, Any] = {n: self.stops[n][i] for n, i in self.index.items()}
        self.live_draws = 0
        """How many times the live widget called ``draw`` between the stops."""
        self._frames: dict[tuple[int, ...], bytes] = {}
        self._live: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._widget: Any = None
        self._image: Any = None
        self._status: Any = None
        self._pending: asyncio.TimerHandle | None = None
        self._syncing = False

    # -- frames ---------------------------------------------------------------
    def params(self, key: tuple[int, ...] | None = None) -> dict[str, Any]:
        """Slider values at the stop indices ``key`` (default: the current values, which a
        continuous slider may have moved between the stops)."""
        if key is None:
            return dict(self.values)
        return {name: self.stops[name][i] for name, i in zip(self.stops, key, strict=True)}

    def key(self) -> tuple[int, ...]:
        """Stop indices of the current slider position (the nearest stops between them)."""
        return tuple(self.index[name] for name in self.stops)

    def _render(self, params: Mapping[str, Any]) -> bytes:
        fig = self.draw(**params)
        if not isinstance(fig, Figure):
            raise TypeError(f"draw must return a matplotlib Figure, got {type(fig).__name__}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=self.dpi, bbox_inches="tight")
        plt.close(fig)
        return buf.getvalue()

    def frame(self, key: tuple[int, ...] | None = None) -> bytes:
        """PNG bytes of the figure at stop indices ``key`` (rendered once, then cached)."""
        key = self.key() if key is None else key
        if key not in self._frames:
            self._frames[key] = self._render(self.params(key))
        return self._frames[key]

    def current_frame(self) -> bytes:
        """PNG bytes of the figure at the current values: a stop's frame, or drawn (cached)."""
        if all(self._is_stop(name) for name in self.stops):
            return self.frame(tuple(_nearest(self.stops[n], self.values[n]) for n in self.stops))
        cache_key = tuple(round(float(v), 12) if _is_number(v) else v for v in self.values.values())
        if cache_key in self._live:
            self._live.move_to_end(cache_key)
            return self._live[cache_key]
        png = self._render(self.values)
        self.live_draws += 1
        self._live[cache_key] = png
        while len(self._live) > LIVE_CACHE:
            self._live.popitem(last=False)
        return png

    def all_keys(self) -> list[tuple[int, ...]]:
        """Every combination of stop indices, i.e. every frame of the static fallback."""
        return list(itertools.product(*(range(len(v)) for v in self.stops.values())))

    # -- static HTML ------------------------------------------------------------
    def static_html(self) -> str:
        """Self-contained HTML: every frame, one range input per slider, inline JavaScript."""
        uid = f"flatlib-slider-{uuid.uuid4().hex[:12]}"
        frames = {
            ",".join(map(str, key)): base64.b64encode(self.frame(key)).decode("ascii")
            for key in self.all_keys()
        }
        payload = {
            "frames": frames,
            "labels": {n: [_format(v) for v in vals] for n, vals in self.stops.items()},
        }
        controls = []
        for name, values in self.stops.items():
            i = self.index[name]
            controls.append(
                '<label class="flatlib-control" style="display:block;margin:2px 0">'
                f'<span style="display:inline-block;min-width:9em">{html.escape(self.labels[name])}'
                "</span>"
                f'<input type="range" class="flatlib-range" data-name="{html.escape(name)}" '
                f'min="0" max="{len(values) - 1}" step="1" value="{i}" '
                f'aria-label="{html.escape(self.labels[name])}" style="width:16em;'
                'vertical-align:middle"> '
                f'<span class="flatlib-value">{html.escape(_format(values[i]))}</span></label>'
            )
        default = base64.b64encode(self.frame()).decode("ascii")
        script = _SCRIPT % {"id": json.dumps(uid)}
        data = json.dumps(payload).replace("</", "<\\/")
        return (
            f'<div class="flatlib-slider" id="{uid}">'
            f'<div class="flatlib-controls">{"".join(controls)}</div>'
            f'<img class="flatlib-frame" alt="figure (move the sliders)" '
            f'src="data:image/png;base64,{default}" style="max-width:100%">'
            f'<script type="application/json" class="flatlib-frames">{data}</script>'
            f"<script>{script}</script></div>"
        )

    # -- live widget --------------------------------------------------------------
    @property
    def widget(self) -> Any:
        """The live ``ipywidgets`` UI: one slider per slider name above the figure.

        Numeric sliders are continuous over the range of their stops (see ``continuous``): any
        value in range, dragged or typed into the slider's readout, calls ``draw`` (debounced,
        cached). The figure is shown at its natural size, left-aligned under the sliders.
        """
        if self._widget is None:
            import ipywidgets as w

            image = w.Image(
                value=self.current_frame(),
                format="png",
                layout=w.Layout(
                    width="auto", height="auto", max_width="100%", align_self="flex-start"
                ),
            )
            image.add_class("flatlib-live-frame")
            status = w.HTML(value="", layout=w.Layout(display="none", margin="0 0 0 0.5em"))
            status.add_class("flatlib-live-status")
            controls = [self._control(w, name) for name in self.stops]
            for name, control in zip(self.stops, controls, strict=True):
                control.observe(self._on_change(name), names="value")
            box = w.VBox([*controls, status, image], layout=w.Layout(align_items="flex-start"))
            box.add_class("flatlib-live")
            self._image, self._status = image, status
            self._widget = box
        return self._widget

    def _control(self, w: Any, name: str) -> Any:
        values = self.stops[name]
        common = {
            "description": self.labels[name],
            "continuous_update": False,
            "style": {"description_width": "initial"},
            "layout": w.Layout(width="32em"),
        }
        kind = self.kinds[name]
        if kind == "int":
            return w.IntSlider(
                value=int(self.values[name]), min=int(min(values)), max=int(max(values)),
                step=1, **common,
            )  # fmt: skip
        if kind in ("float", "log"):
            lo, hi = float(min(values)), float(max(values))
            if kind == "log":
                span = math.log10(hi) - math.log10(lo)
                return w.FloatLogSlider(
                    value=float(self.values[name]), base=10.0, min=math.log10(lo),
                    max=math.log10(hi), step=_nice_step(span), readout_format=".3g", **common,
                )  # fmt: skip
            step = _nice_step(hi - lo)
            decimals = min(6, max(_decimals(values), -math.floor(math.log10(step))))
            return w.FloatSlider(
                value=float(self.values[name]), min=lo, max=hi, step=step,
                readout_format=f".{decimals}f", **common,
            )  # fmt: skip
        # Not numeric (or a single stop): the stops themselves, by index.
        return w.SelectionSlider(
            options=[(_format(v), i) for i, v in enumerate(values)],
            value=self.index[name],
            **common,
        )

    def _on_change(self, name: str) -> Callable[[dict[str, Any]], None]:
        def handler(change: dict[str, Any]) -> None:
            if self._syncing:
                return
            new = change["new"]
            if self.kinds[name] == "stops":
                self._move(name, self.stops[name][int(new)])
            else:
                self._move(name, new)
            self._schedule()

        return handler

    def _schedule(self) -> None:
        """Redraw after ``debounce`` seconds of quiet (at once when no event loop runs)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        loop = None
        if self.debounce > 0:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is None:
            self.redraw()
        else:
            if self._status is not None:
                self._show_status("drawing ...")
            self._pending = loop.call_later(self.debounce, self.redraw)

    def redraw(self) -> None:
        """Show the figure at the current slider values in the live widget (if built).

        A value that is not a stop calls ``draw``; if ``draw`` rejects it (a figure drawn from
        stored runs only knows its stops), the sliders snap to the nearest stops and a note
        under them says so.
        """
        self._pending = None
        note = ""
        try:
            png = self.current_frame()
        except Exception as exc:  # a figure of stored runs knows only its stops
            if all(self._is_stop(n) for n in self.stops):
                self._show_status("")
                raise
            asked = ", ".join(
                f"{self.labels[n]} = {_format(self.values[n])}"
                for n in self.stops
                if not self._is_stop(n)
            )
            self._snap_to_stops()
            shown = ", ".join(f"{self.labels[n]} = {_format(self.values[n])}" for n in self.stops)
            note = (
                f"No figure at {html.escape(asked)} ({html.escape(type(exc).__name__)}: this "
                f"figure knows only its stops); showing the nearest stop, {html.escape(shown)}."
            )
            png = self.current_frame()
        if self._image is not None:
            self._image.value = png
        self._show_status(note)

    def _show_status(self, text: str) -> None:
        if self._status is None:
            return
        self._status.value = f"<small>{text}</small>" if text else ""
        self._status.layout.display = None if text else "none"

    def _move(self, name: str, value: Any) -> None:
        """Record a new value of slider ``name`` (a stop's own value when it is one)."""
        stops = self.stops[name]
        i = _nearest(stops, value)
        if _same(stops[i], value):
            value = stops[i]
        elif self.kinds[name] == "int":
            value = int(round(value))
        else:
            value = float(value)
        self.index[name], self.values[name] = i, value

    def _is_stop(self, name: str) -> bool:
        value = self.values[name]
        return any(_same(value, v) for v in self.stops[name])

    def _snap_to_stops(self) -> None:
        self._syncing = True
        try:
            for i, name in enumerate(self.stops):
                j = _nearest(self.stops[name], self.values[name])
                self.index[name], self.values[name] = j, self.stops[name][j]
                if self._widget is not None:
                    control = self._widget.children[i]
                    control.value = j if self.kinds[name] == "stops" else self.values[name]
        finally:
            self._syncing = False

    def set(self, **params: Any) -> None:
        """Move sliders to the given values and redraw (also moves the live widget's sliders).

        A continuous slider takes any value in the range of its stops, a stop-only slider one
        of its stops. The static fallback starts at the nearest stops.
        """
        for name, value in params.items():
            if name not in self.stops:
                raise ValueError(f"unknown slider {name!r}; sliders are {list(self.stops)}")
            stops = self.stops[name]
            if self.kinds[name] == "stops":
                matches = [i for i, v in enumerate(stops) if v == value]
                if not matches:
                    raise ValueError(f"{name}={value!r} is not one of its stops {stops}")
                value = stops[matches[0]]
            else:
                if not _is_number(value) or not min(stops) <= value <= max(stops):
                    raise ValueError(
                        f"{name}={value!r} is outside the range [{min(stops)}, {max(stops)}] "
                        "of its stops"
                    )
            self._move(name, value)
        if self._widget is not None:
            self._syncing = True
            try:
                for i, name in enumerate(self.stops):
                    control = self._widget.children[i]
                    kind = self.kinds[name]
                    control.value = self.index[name] if kind == "stops" else self.values[name]
            finally:
                self._syncing = False
            self.redraw()

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle = dict(self.widget._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/html"] = self.static_html()
        bundle["text/plain"] = f"<SliderFigure sliders={list(self.stops)}>"
        return bundle


def slider_figure(
    draw: Callable[..., Figure],
    sliders: Mapping[str, Sequence[Any]],
    defaults: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
    dpi: int = 80,
    continuous: bool | Collection[str] | None = None,
    debounce: float = 0.15,
) -> SliderFigure:
    """Build the book's standard slider UI (see :class:`SliderFigure`); display it as a cell's
    last expression."""
    return SliderFigure(
        draw,
        sliders,
        defaults=defaults,
        labels=labels,
        dpi=dpi,
        continuous=continuous,
        debounce=debounce,
    )
