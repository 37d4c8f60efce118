"""The slider mechanism: one output, a live widget and a kernel-free fallback."""

from __future__ import annotations

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
    widget.children[0].value = 2  # move slider "a" to its last stop, as a reader would
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
