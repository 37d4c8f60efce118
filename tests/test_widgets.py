"""The slider mechanism: one output, a live widget and a kernel-free fallback.

With a kernel the numeric sliders are continuous: any value in range draws a new figure
(debounced, cached); the static fallback keeps its pre-rendered stops.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re

import matplotlib.pyplot as plt
import pytest

from flatlib.figures.widgets import WIDGET_MIME, SliderFigure, slider_figure


def draw(a: int, b: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, a * b])
    ax.set_title(f"{a} {b}")
    return fig


def frames_of(html: str) -> dict[str, str]:
    payload = re.search(
        r'<script type="application/json" class="flatlib-frames">(.*?)</script>', html, re.S
    )
    assert payload, "static HTML carries no frames"
    return json.loads(payload.group(1))["frames"]


def test_bundle_carries_live_widget_and_static_fallback() -> None:
    ui = slider_figure(draw, {"a": [1, 2, 3], "b": [0.5, 1.0]}, defaults={"a": 2})
    bundle = ui._repr_mimebundle_()
    assert WIDGET_MIME in bundle and "model_id" in bundle[WIDGET_MIME]
    html = bundle["text/html"]
    frames = frames_of(html)
    assert sorted(frames) == sorted(f"{i},{j}" for i in range(3) for j in range(2))
    assert len(set(frames.values())) == 6, "different slider stops must give different figures"
    for png in frames.values():
        assert base64.b64decode(png)[:8] == b"\x89PNG\r\n\x1a\n"
    # The image shown before any interaction is the default stop (a=2 -> index 1, b middle).
    shown = re.search(r'<img class="flatlib-frame"[^>]*src="data:image/png;base64,([^"]+)"', html)
    assert shown and shown.group(1) == frames["1,0"]
    assert html.count('type="range"') == 2


def test_live_widget_redraws_when_a_slider_moves() -> None:
    ui = SliderFigure(draw, {"a": [1, 2, 3], "b": [0.5, 1.0]})
    widget = ui.widget
    image = widget.children[-1]
    before = image.value
    widget.children[0].value = 3  # move slider "a" to its last stop, as a reader would
    assert ui.params() == {"a": 3, "b": 0.5}
    assert image.value != before and image.value == ui.frame((2, 0))
    ui.set(b=1.0)
    assert widget.children[1].value == 1 and image.value == ui.frame((2, 1))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sliders": {}}, ValueError, "sliders"),
        ({"sliders": {"a": "abc"}}, TypeError, "sliders\\['a'\\]"),
        ({"sliders": {"a": []}}, ValueError, "sliders\\['a'\\]"),
        ({"sliders": {"a": [1]}, "defaults": {"a": 5}}, ValueError, "defaults\\['a'\\]"),
        ({"sliders": {"a": [1]}, "defaults": {"z": 5}}, ValueError, "unknown sliders"),
        ({"sliders": {"a": list(range(10)), "b": list(range(10))}}, ValueError, "frames"),
    ],
)
def test_bad_arguments_name_themselves(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SliderFigure(draw, **kwargs)


def test_draw_must_return_a_figure() -> None:
    ui = SliderFigure(lambda a: "not a figure", {"a": [1]})
    with pytest.raises(TypeError, match="draw must return a matplotlib Figure"):
        ui.frame()


class Counting:
    """A ``draw`` that counts its calls and knows only its stops when ``strict``."""

    def __init__(self, strict: bool = False) -> None:
        self.calls: list[dict] = []
        self.strict = strict

    def __call__(self, a: int, b: float) -> plt.Figure:
        if self.strict and (a, b) not in {(x, y) for x in (1, 2, 3) for y in (0.5, 1.0)}:
            raise KeyError((a, b))
        self.calls.append({"a": a, "b": b})
        return draw(a, b)


def test_numeric_sliders_are_continuous_over_the_range_of_their_stops() -> None:
    import ipywidgets as w

    ui = SliderFigure(
        lambda a, b, c, d, e: draw(a, b),
        {"a": [1, 2, 3], "b": [0.5, 1.0], "c": [1.0, 10.0, 100.0], "d": ["x", "y"], "e": [7]},
        defaults={"a": 2},
    )
    assert ui.kinds == {"a": "int", "b": "float", "c": "log", "d": "stops", "e": "stops"}
    a, b, c, d, e = ui.widget.children[:5]
    assert isinstance(a, w.IntSlider) and (a.min, a.max, a.value) == (1, 3, 2)
    assert isinstance(b, w.FloatSlider) and (b.min, b.max, b.value) == (0.5, 1.0, 0.5)
    assert 0 < b.step <= 0.01, "a float slider must reach values between its stops"
    assert isinstance(c, w.FloatLogSlider) and (c.min, c.max) == (0.0, 2.0)
    assert isinstance(d, w.SelectionSlider) and isinstance(e, w.SelectionSlider)
    assert all(not s.continuous_update for s in (a, b, c, d, e)), "draw on release, not on drag"
    off = SliderFigure(draw, {"a": [1, 2, 3], "b": [0.5, 1.0]}, continuous=False)
    assert off.kinds == {"a": "stops", "b": "stops"}
    some = SliderFigure(draw, {"a": [1, 2, 3], "b": [0.5, 1.0]}, continuous={"b"})
    assert some.kinds == {"a": "stops", "b": "float"}


def test_a_value_between_the_stops_calls_draw_and_is_cached() -> None:
    counting = Counting()
    ui = SliderFigure(counting, {"a": [1, 2, 3], "b": [0.5, 1.0]}, debounce=0)
    image = ui.widget.children[-1]
    at_stop = image.value
    assert counting.calls == [{"a": 2, "b": 0.5}]
    ui.widget.children[1].value = 0.73  # dragged or typed into the readout
    assert counting.calls[-1] == {"a": 2, "b": 0.73}
    assert image.value != at_stop and image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert ui.params() == {"a": 2, "b": 0.73} and ui.live_draws == 1
    ui.widget.children[1].value = 0.5
    assert image.value == at_stop, "back at a stop: the static page's own frame"
    ui.widget.children[1].value = 0.73
    assert ui.live_draws == 1 and len(counting.calls) == 2, "a value seen before is cached"
    ui.set(a=3, b=0.9)
    assert counting.calls[-1] == {"a": 3, "b": 0.9}
    assert (ui.widget.children[0].value, ui.widget.children[1].value) == (3, 0.9)
    # The static fallback still holds the stops only, starting at the nearest one.
    html = ui._repr_mimebundle_()["text/html"]
    assert sorted(frames_of(html)) == sorted(f"{i},{j}" for i in range(3) for j in range(2))
    assert ui.key() == (2, 1)
    with pytest.raises(ValueError, match="outside the range"):
        ui.set(b=2.0)


def test_changes_in_a_burst_draw_once() -> None:
    counting = Counting()
    ui = SliderFigure(counting, {"a": [1, 2, 3], "b": [0.5, 1.0]}, debounce=0.05)
    widget = ui.widget
    image = widget.children[-1]
    before = image.value

    async def burst() -> None:
        for value in (0.6, 0.7, 0.8):
            widget.children[1].value = value
        assert image.value == before, "redrawn before the burst was over"
        await asyncio.sleep(0.3)

    asyncio.run(burst())
    assert counting.calls[1:] == [{"a": 2, "b": 0.8}]
    assert image.value != before


def test_a_figure_of_stored_runs_snaps_to_the_nearest_stop() -> None:
    counting = Counting(strict=True)
    ui = SliderFigure(counting, {"a": [1, 2, 3], "b": [0.5, 1.0]}, debounce=0)
    widget = ui.widget
    widget.children[1].value = 0.9
    assert ui.params() == {"a": 2, "b": 1.0} and widget.children[1].value == 1.0
    assert widget.children[-1].value == ui.frame((1, 1))
    status = widget.children[-2]
    assert "nearest stop" in status.value and status.layout.display != "none"
    widget.children[0].value = 3
    assert status.layout.display == "none", "the note goes once a stop is drawn"


def test_live_figure_keeps_its_natural_size_under_the_sliders() -> None:
    ui = SliderFigure(draw, {"a": [1, 2, 3], "b": [0.5, 1.0]})
    widget, image = ui.widget, ui.widget.children[-1]
    assert widget.layout.align_items == "flex-start", "a stretching box enlarges the figure"
    assert image.layout.width == "auto" and image.layout.height == "auto"
    assert image.layout.max_width == "100%"
    assert widget.children.index(image) == len(widget.children) - 1, "figure under the sliders"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"continuous": {"z"}}, ValueError, "unknown sliders"),
        ({"continuous": "a"}, TypeError, "continuous"),
        ({"debounce": -1}, ValueError, "debounce"),
    ],
)
def test_bad_live_options_name_themselves(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        SliderFigure(draw, {"a": [1, 2, 3], "b": [0.5, 1.0]}, **kwargs)
