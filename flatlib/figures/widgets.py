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

Both paths show the same pre-rendered frames, so what a reader sees on the hosted page
is exactly what the notebook draws. Example::

    def draw(eta):
        fig, ax = plt.subplots()
        ...
        return fig

    flatlib.figures.widgets.slider_figure(draw, {"eta": [0.1, 0.5, 0.9]}, defaults={"eta": 0.5})
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
MAX_FRAMES = 96

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


class SliderFigure:
    """A figure driven by sliders, live in a kernel and pre-rendered for static HTML.

    Parameters
    ----------
    draw
        ``draw(**params) -> matplotlib.figure.Figure``; called once per slider stop.
    sliders
        Slider name -> the values it can take (its stops), in order.
    defaults
        Initial value of each slider (default: the middle stop).
    labels
        Slider name -> the label shown next to it (default: the name).
    dpi
        Resolution of the rendered frames.
    """

    def __init__(
        self,
        draw: Callable[..., Figure],
        sliders: Mapping[str, Sequence[Any]],
        defaults: Mapping[str, Any] | None = None,
        labels: Mapping[str, str] | None = None,
        dpi: int = 80,
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
        self._frames: dict[tuple[int, ...], bytes] = {}
        self._widget: Any = None

    # -- frames ---------------------------------------------------------------
    def params(self, key: tuple[int, ...] | None = None) -> dict[str, Any]:
        """Slider values at the stop indices ``key`` (default: the current position)."""
        key = self.key() if key is None else key
        return {name: self.stops[name][i] for name, i in zip(self.stops, key, strict=True)}

    def key(self) -> tuple[int, ...]:
        """Stop indices of the current slider position."""
        return tuple(self.index[name] for name in self.stops)

    def frame(self, key: tuple[int, ...] | None = None) -> bytes:
        """PNG bytes of the figure at stop indices ``key`` (rendered once, then cached)."""
        key = self.key() if key is None else key
        if key not in self._frames:
            fig = self.draw(**self.params(key))
            if not isinstance(fig, Figure):
                raise TypeError(f"draw must return a matplotlib Figure, got {type(fig).__name__}")
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=self.dpi, bbox_inches="tight")
            plt.close(fig)
            self._frames[key] = buf.getvalue()
        return self._frames[key]

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
        """The live ``ipywidgets`` UI: one ``SelectionSlider`` per slider above an ``Image``."""
        if self._widget is None:
            import ipywidgets as w

            image = w.Image(value=self.frame(), format="png")
            controls = []
            for name, values in self.stops.items():
                slider = w.SelectionSlider(
                    options=[(_format(v), i) for i, v in enumerate(values)],
                    value=self.index[name],
                    description=self.labels[name],
                    continuous_update=False,
                    style={"description_width": "initial"},
                    layout=w.Layout(width="32em"),
                )
                slider.observe(self._on_change(name, image), names="value")
                controls.append(slider)
            self._widget = w.VBox([*controls, image])
        return self._widget

    def _on_change(self, name: str, image: Any) -> Callable[[dict[str, Any]], None]:
        def handler(change: dict[str, Any]) -> None:
            self.index[name] = int(change["new"])
            image.value = self.frame()

        return handler

    def set(self, **params: Any) -> None:
        """Move sliders to the given values (also moves the live widget's sliders)."""
        for name, value in params.items():
            if name not in self.stops:
                raise ValueError(f"unknown slider {name!r}; sliders are {list(self.stops)}")
            matches = [i for i, v in enumerate(self.stops[name]) if v == value]
            if not matches:
                raise ValueError(f"{name}={value!r} is not one of its stops {self.stops[name]}")
            self.index[name] = matches[0]
            if self._widget is not None:
                slider = self._widget.children[list(self.stops).index(name)]
                slider.value = matches[0]

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
) -> SliderFigure:
    """Build the book's standard slider UI (see :class:`SliderFigure`); display it as a cell's
    last expression."""
    return SliderFigure(draw, sliders, defaults=defaults, labels=labels, dpi=dpi)
