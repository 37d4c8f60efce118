"""Figures of chapters 6-7: intermediate gains (Theorem 2, Fig. 3) and layer coupling (Theorem 3).

Same conventions as :mod:`flatlib.theory.linear` (weights ``[W1, ..., Wm]``, ``Wj`` of shape
``(d_j, d_{j-1})``, white data, assumption A2). ``T = U S V^T`` is the end-to-end map with top
singular triple ``(sigma_max, u, v)``; ``P_k = W_k ... W_1`` is the ``k``-th partial product.

Chapter 6 (Theorem 2, App. VI and IX.1):

* :func:`target_map` - the Gaussian map ``T`` shared by all minima of a figure.
* :func:`s105_start` - the starting point of the paper's random walk (eq. S105).
* :func:`walk_to_flattest` - eq. (S105) starts walked to flattest minima (eq. S106).
* :func:`gains_profile`, :class:`GainsProfile` - singular values of every ``P_k``, the gain of
  ``v`` and the bound ``sqrt(m) sigma_max^(k/m)`` (Theorem 2(i)-(ii)).
* :func:`plot_fig3` - Fig. 3: four arbitrary minima (eq. S104) against four flattest ones.
* :func:`plot_gains_pair`, :func:`gains_slider` - one random minimum next to the flattest
  minimum that gauge descent reaches from it, over seed, depth ``m`` and width ``d``.
* :func:`compare_flatteners`, :func:`plot_flattening` - ``lambda_max`` along the walk
  (eq. S106) and along gauge descent, down to the Theorem 1 value (eq. 17).
* :func:`theorem2_errors` - Theorem 2(i)-(iv) measured with ``np.linalg.svd`` of the partial
  products.

Chapter 7 (Theorem 3, App. VII):

* :func:`layer_path`, :class:`LayerPath` - the path ``r_k``, ``q_k`` of ``v`` through the layers
  and the singular pair of each ``W_k`` it travels on.
* :func:`plot_layer_path`, :func:`coupling_slider` - per layer singular values and the
  alignment of consecutive singular vectors, flattest against random minima.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from flatlib._validation import as_int, as_weights
from flatlib.figures import new_figure
from flatlib.figures.widgets import SliderFigure, slider_figure
from flatlib.theory import linear
from flatlib.theory.flattening import FlattenResult, flatten

__all__ = [
    "FIG3_D",
    "FIG3_M",
    "SLIDER_TOL",
    "FlattenerRun",
    "GainsProfile",
    "LayerPath",
    "compare_flatteners",
    "coupling_slider",
    "gains_pair",
    "gains_profile",
    "gains_slider",
    "layer_path",
    "plot_fig3",
    "plot_flattening",
    "plot_gains_pair",
    "plot_layer_path",
    "s105_start",
    "target_map",
    "theorem2_errors",
    "walk_to_flattest",
]

FIG3_D = 4
"""Width of every layer in Fig. 3 (``d_x = d_y = d_k = 4``)."""
FIG3_M = 6
"""Depth of the networks of Fig. 3."""
SLIDER_TOL = 1e-6
"""Relative gap to the Theorem 1 value at which the slider frames stop gauge descent."""

SV_COLOR = "tab:blue"
V_COLOR = "tab:red"
BOUND_STYLE = {"color": "k", "ls": ":", "lw": 1.5}


# ----------------------------------------------------------------------------- sampling minima


def target_map(d: int, seed: int = 0) -> np.ndarray:
    """A ``d x d`` end-to-end map ``T`` with i.i.d. ``N(0, 1)`` entries drawn from ``seed``."""
    d = as_int(d, "d", minimum=1)
    return np.random.default_rng(seed).standard_normal((d, d))


def s105_start(T: Any, m: int, seed: int = 0) -> list[np.ndarray]:
    """Starting point of the paper's flattening walk, eq. (S105) (App. IX.1).

    Draws ``A_1..A_m`` (``d x d``, i.i.d. ``N(0, 1)``) and a layer ``j`` uniform in ``1..m``,
    sets ``W_i = A_i`` for ``i != j`` and
    ``W_j = (A_m ... A_{j+1})^(-1) T (A_{j-1} ... A_1)^(-1)``, so that ``Wm ... W1 = T``.
    ``T`` must be square and invertible (all layers have its size).
    """
    t = linear.as_target_matrix(T)
    m = as_int(m, "m", minimum=1)
    d = t.shape[0]
    if t.shape != (d, d):
        raise ValueError(f"T must be square for eq. (S105), got shape {t.shape}")
    if np.linalg.cond(t) > 1e12:
        raise ValueError("T must be invertible for eq. (S105)")
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((d, d)) for _ in range(m)]
    j = int(rng.integers(m))
    above = linear.end_to_end(ws[j + 1 :]) if j + 1 < m else np.eye(d)
    below = linear.end_to_end(ws[:j]) if j > 0 else np.eye(d)
    ws[j] = np.linalg.solve(above, t) @ np.linalg.inv(below)
    return ws


def walk_to_flattest(
    T: Any, m: int, seeds: Sequence[int] = (0, 1, 2, 3), max_iter: int = 4000
) -> list[FlattenResult]:
    """Flattest minima the way App. IX.1 samples them: eq. (S105) starts, eq. (S106) walk.

    For each seed runs ``flatten(s105_start(T, m, seed), T, method="walk", seed=seed,
    max_iter=max_iter)``; the walk stops 1% above the Theorem 1 value (eq. 17), its default
    tolerance, or after ``max_iter`` proposals (check ``converged``).
    """
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError("seeds must be a non-empty sequence of ints")
    return [
        flatten(s105_start(T, m, seed), T, method="walk", seed=seed, max_iter=max_iter)
        for seed in seeds
    ]


# ----------------------------------------------------------------------------- Theorem 2


@dataclass(frozen=True)
class GainsProfile:
    """What Fig. 3 draws for one minimum (see :func:`gains_profile`).

    ``singular_values[k-1]``: singular values of ``P_k = W_k ... W_1`` (blue dots);
    ``v_gain[k-1] = ||P_k v||`` (red circles, Theorem 2(i)); ``bound[k-1] = sqrt(m)
    sigma_max^(k/m)`` (dotted line, Theorem 2(ii)); ``flattest_gain[k-1] = sigma_max^(k/m)``.
    """

    ks: np.ndarray
    singular_values: list[np.ndarray]
    v_gain: np.ndarray
    bound: np.ndarray
    flattest_gain: np.ndarray
    sharpness: float
    flattest_sharpness: float


def gains_profile(weights: Any, T: Any) -> GainsProfile:
    """Intermediate gains of a global minimum, as in Fig. 3 (Theorem 2).

    Uses :func:`flatlib.theory.linear.partial_gains`, :func:`flatlib.theory.linear.v_gains` and
    :func:`flatlib.theory.linear.gain_bound`; also records ``lambda_max(H_w)`` (eq. 20) and the
    Theorem 1 value (eq. 17), so a plot can say how flat the minimum is.
    """
    ws = as_weights(weights)
    t = linear.as_target_matrix(T)
    m = len(ws)
    sigma = float(np.linalg.norm(t, 2))
    ks = np.arange(1, m + 1)
    return GainsProfile(
        ks=ks,
        singular_values=linear.partial_gains(ws),
        v_gain=linear.v_gains(ws, t),
        bound=np.array([linear.gain_bound(t, m, int(k)) for k in ks]),
        flattest_gain=sigma ** (ks / m),
        sharpness=linear.sharpness(ws),
        flattest_sharpness=linear.flattest_sharpness(t, m),
    )


def _dots(ax: Axes, values: list[np.ndarray], label: str) -> None:
    """Blue dots: the entries of ``values[k-1]`` above ``x = k`` for ``k = 1..len(values)``."""
    xs = np.concatenate([np.full(v.size, k) for k, v in enumerate(values, start=1)])
    ax.plot(xs, np.concatenate(values), ".", color=SV_COLOR, ms=7, label=label)


def _draw_gains(ax: Axes, profile: GainsProfile, title: str) -> None:
    """Fig. 3 panel: blue singular values of ``P_k``, red ``||P_k v||``, dotted bound."""
    _dots(ax, profile.singular_values, "singular values of $W_k\\cdots W_1$")
    ax.plot(
        profile.ks,
        profile.v_gain,
        "o",
        mfc="none",
        color=V_COLOR,
        ms=11,
        mew=1.5,
        label="gain of $\\mathbf{v}$: $\\|W_k\\cdots W_1\\mathbf{v}\\|$",
    )
    grid = np.linspace(0.8, profile.ks[-1] + 0.2, 50)
    m = profile.ks[-1]
    root = profile.flattest_gain[0]  # sigma_max^(1/m)
    ax.plot(
        grid,
        np.sqrt(m) * root**grid,
        **BOUND_STYLE,
        label="Theorem 2(ii): $\\sqrt{m}\\,\\sigma_{\\max}^{k/m}$",
    )
    ax.set_yscale("log")
    ax.set_xticks(list(profile.ks))
    ax.set_title(title, fontsize=9)


def plot_fig3(T: Any, random_weights: Sequence[Any], flattest_weights: Sequence[Any]) -> Figure:
    """Fig. 3: intermediate gains against depth ``k`` for arbitrary and flattest minima.

    Top row: the minima ``random_weights`` (e.g. eq. S104); bottom row: ``flattest_weights``
    (e.g. :func:`walk_to_flattest`). In each panel the blue dots are the singular values of
    ``W_k ... W_1`` (log scale, not normalised), the red circles the gain ``||W_k ... W_1 v||``
    of the top right singular vector of ``T`` (Theorem 2(i)) and the dotted line the bound
    ``sqrt(m) sigma_max(T)^(k/m)`` of Theorem 2(ii). Panel titles give ``lambda_max(H_w)``
    relative to the Theorem 1 value (eq. 17).
    """
    rows = [list(random_weights), list(flattest_weights)]
    if not rows[0] or len(rows[0]) != len(rows[1]):
        raise ValueError("random_weights and flattest_weights must be non-empty and equally long")
    n = len(rows[0])
    fig = new_figure(figsize=(2.6 * n + 0.6, 5.6), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    names = ["(a) arbitrary global minima", "(b) flattest global minima"]
    for r, (row, name) in enumerate(zip(rows, names, strict=True)):
        profiles = [gains_profile(w, T) for w in row]
        top = max(
            max(max(p.singular_values[k].max() for k in range(len(p.ks))), p.bound[-1])
            for p in profiles
        )
        low = min(min(p.singular_values[k].min() for k in range(len(p.ks))) for p in profiles)
        for i, p in enumerate(profiles):
            ax = axes[r, i]
            ratio = p.sharpness / p.flattest_sharpness
            _draw_gains(ax, p, f"$\\lambda_{{\\max}}$ = {ratio:.3g} x Theorem 1")
            ax.set_ylim(low / 2, top * 3)
            ax.set_xlabel("layer k")
        axes[r, 0].set_ylabel(f"{name}\n gain up to layer k")
    fig.legend(handles=axes[0, 0].get_lines(), loc="outside upper center", ncol=3, fontsize=9)
    return fig


def gains_pair(T: Any, m: int, seed: int, tol: float = SLIDER_TOL) -> tuple[list, FlattenResult]:
    """A random minimum ``random_minimum(T, m, seed)`` (eq. S104) and the flattest minimum that
    ``flatten(..., method="gauge", tol=tol)`` reaches from it (eq. 17 up to ``tol``)."""
    start = linear.random_minimum(T, m, seed=seed)
    return start, flatten(start, T, method="gauge", tol=tol)


def plot_gains_pair(T: Any, m: int, seed: int, tol: float = SLIDER_TOL) -> Figure:
    """Fig. 3 for one pair from :func:`gains_pair`: a random minimum and where flattening takes it.

    Same drawing as :func:`plot_fig3` (blue: singular values of ``W_k ... W_1``; red:
    ``||W_k ... W_1 v||``; dotted: ``sqrt(m) sigma_max^(k/m)``, Theorem 2(ii)); the grey dashed
    curve is ``sigma_max^(k/m)``, where Theorem 2(i) puts the red circles of a flattest minimum.
    """
    start, run = gains_pair(T, m, seed, tol)
    fig = new_figure(figsize=(9, 3.5), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    titles = ["random minimum (eq. S104)", "after gauge flattening"]
    profiles = [gains_profile(start, T), gains_profile(run.weights, T)]
    for ax, p, title in zip(axes, profiles, titles, strict=True):
        ratio = p.sharpness / p.flattest_sharpness
        _draw_gains(ax, p, f"{title}: $\\lambda_{{\\max}}$ = {ratio:.3g} x Theorem 1")
        ax.plot(p.ks, p.flattest_gain, "--", color="0.5", lw=1, label="$\\sigma_{\\max}^{k/m}$")
        ax.set_xlabel("layer k")
    fig.legend(handles=axes[0].get_lines(), loc="outside upper center", ncol=4, fontsize=8)
    axes[0].set_ylabel("gain up to layer k")
    return fig


def gains_slider(
    seeds: Sequence[int] = (0, 1),
    depths: Sequence[int] = (2, 4, 6),
    dims: Sequence[int] = (2, 4),
) -> SliderFigure:
    """Slider over seed, depth ``m`` and width ``d`` for :func:`plot_gains_pair` (Theorem 2).

    ``T = target_map(d, seed=d)`` is fixed for each ``d``; the seed picks the random minimum.
    Frames use gauge descent (fast) rather than the walk of eq. (S106).
    """

    def draw(seed: int, m: int, d: int) -> Figure:
        return plot_gains_pair(target_map(d, seed=d), m, seed)

    return slider_figure(
        draw,
        {"seed": list(seeds), "m": list(depths), "d": list(dims)},
        defaults={
            "seed": seeds[0],
            "m": FIG3_M if FIG3_M in depths else depths[-1],
            "d": FIG3_D if FIG3_D in dims else dims[-1],
        },
        labels={"seed": "random minimum (seed)", "m": "depth m", "d": "width d"},
    )


@dataclass(frozen=True)
class FlattenerRun:
    """One run of :func:`compare_flatteners`: the :class:`flatlib.theory.flattening.FlattenResult`,
    the wall-clock ``seconds`` it took and the Theorem 1 ``target`` (eq. 17)."""

    result: FlattenResult
    seconds: float
    target: float


def compare_flatteners(weights: Any, T: Any, seed: int = 0) -> dict[str, FlattenerRun]:
    """Run ``flatten(weights, T, method=...)`` for ``"walk"`` (eq. S106) and ``"gauge"``.

    Each method uses its default tolerance; the result maps the method to a
    :class:`FlattenerRun` with its wall-clock time (which depends on the machine).
    """
    target = linear.flattest_sharpness(T, len(as_weights(weights)))
    out = {}
    for method in ("walk", "gauge"):
        start = time.perf_counter()
        result = flatten(weights, T, method=method, seed=seed)
        out[method] = FlattenerRun(result, time.perf_counter() - start, target)
    return out


def plot_flattening(runs: dict[str, FlattenerRun]) -> Figure:
    """``lambda_max(H_w)`` along each flattening run, down to the Theorem 1 value (eq. 17).

    Left: against the accepted step (walk, eq. S106) or gradient step (gauge), log scale,
    with the Theorem 1 value dashed. Right: the relative gap ``lambda_max / target - 1``.
    """
    if not runs:
        raise ValueError("runs must hold at least one FlattenerRun")
    fig = new_figure(figsize=(10, 3.6), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    colors = {"walk": "tab:orange", "gauge": "tab:green"}
    for method, run in runs.items():
        hist = run.result.history
        label = f"{method}: {hist.size - 1} steps, {run.result.n_iterations} iterations"
        ax.plot(np.arange(hist.size), hist, "-", color=colors.get(method), label=label)
        bx.plot(
            np.arange(hist.size), hist / run.target - 1, "-", color=colors.get(method), label=method
        )
    target = next(iter(runs.values())).target
    ax.axhline(
        target, color="k", ls="--", lw=1.2, label="Theorem 1: $2m\\sigma_{\\max}^{2(1-1/m)}$"
    )
    ax.set_yscale("log")
    ax.set_xlabel("accepted step")
    ax.set_ylabel("$\\lambda_{\\max}(\\mathbf{H}_\\mathbf{w})$")
    ax.set_title("flattening stays on $\\Omega$ and lowers the sharpness")
    ax.legend(fontsize=8)
    for tol, style in ((1e-2, ":"), (1e-8, "-.")):
        bx.axhline(tol, color="0.5", ls=style, lw=1, label=f"tolerance {tol:g}")
    bx.set_yscale("log")
    bx.set_xlabel("accepted step")
    bx.set_ylabel("$\\lambda_{\\max}$ / Theorem 1 value $- 1$")
    bx.set_title("relative gap to the Theorem 1 value")
    bx.legend(fontsize=8)
    return fig


def _svd_matched(matrix: np.ndarray, vector: np.ndarray, side: str) -> tuple[int, float]:
    """Index and ``|cos|`` of the singular vector of ``matrix`` best aligned with ``vector``."""
    uu, _, vt = np.linalg.svd(matrix)
    basis = vt if side == "right" else uu.T
    cos = np.abs(basis @ (vector / np.linalg.norm(vector)))
    j = int(np.argmax(cos[: min(matrix.shape)]))
    return j, float(cos[j])


def theorem2_errors(weights: Any, T: Any) -> dict[str, float]:
    """Theorem 2 measured with ``np.linalg.svd`` of the partial products, worst case over ``k``.

    For ``k = 1..m-1`` with ``P_k = W_k ... W_1`` and ``Q_k = Wm ... W_{k+1}`` (App. VI):

    * ``"v singular vector"``: ``1 - |cos|`` between ``v`` and the right singular vector of
      ``P_k`` best aligned with it (Theorem 2(i): 0);
    * ``"v singular value"``: relative error of that singular value against
      ``sigma_max^(k/m)`` (Theorem 2(i));
    * ``"u singular vector"``, ``"u singular value"``: the same for ``u``, the left singular
      vectors of ``Q_k`` and ``sigma_max^(1 - k/m)`` (Theorem 2(iii));
    * ``"bound ratio"``: ``max_k sigma_max(P_k) / (sqrt(m) sigma_max^(k/m))`` (Theorem 2(ii):
      at most 1).

    Nothing here calls the library's gain functions; ``T``'s SVD is also taken afresh.
    """
    ws = as_weights(weights)
    t = linear.as_target_matrix(T)
    m = len(ws)
    if m < 2:
        raise ValueError(f"weights must have at least two layers, got m = {m}")
    uu, s, vt = np.linalg.svd(t)
    sigma, u, v = s[0], uu[:, 0], vt[0]
    out = dict.fromkeys(
        ["v singular vector", "v singular value", "u singular vector", "u singular value"], 0.0
    )
    ratio = 0.0
    for k in range(1, m):
        p = ws[0]
        for w in ws[1:k]:
            p = w @ p
        q = ws[k]
        for w in ws[k + 1 :]:
            q = w @ q
        sv_p = np.linalg.svd(p, compute_uv=False)
        sv_q = np.linalg.svd(q, compute_uv=False)
        jp, cos_p = _svd_matched(p, v, "right")
        jq, cos_q = _svd_matched(q, u, "left")
        out["v singular vector"] = max(out["v singular vector"], 1 - cos_p)
        out["u singular vector"] = max(out["u singular vector"], 1 - cos_q)
        want_p, want_q = sigma ** (k / m), sigma ** (1 - k / m)
        out["v singular value"] = max(out["v singular value"], abs(sv_p[jp] / want_p - 1))
        out["u singular value"] = max(out["u singular value"], abs(sv_q[jq] / want_q - 1))
        ratio = max(ratio, sv_p[0] / (np.sqrt(m) * want_p))
    out["bound ratio"] = float(ratio)
    return out


# ----------------------------------------------------------------------------- Theorem 3


@dataclass(frozen=True)
class LayerPath:
    """The path of ``v`` through the layers (Theorem 3; see :func:`layer_path`).

    For layer ``k = 1..m`` (index ``k-1``): ``singular_values[k-1]`` are those of ``W_k``;
    ``path_gain[k-1] = ||W_k r_k_bar||`` with ``r_k = W_{k-1} ... W_1 v``; ``matched[k-1]`` is
    the index of the singular triple ``(a, sigma, b)`` of ``W_k`` whose right vector ``b`` is
    best aligned with ``r_k_bar``, and ``matched_value[k-1]`` its singular value. The chain
    ``interface_cos`` (length ``m + 1``) holds ``|cos|`` between consecutive matched singular
    vectors: ``|<v, b_1>|``, ``|<a_k, b_{k+1}>|`` for ``k = 1..m-1``, ``|<a_m, u>|``.
    ``link_cos[k-1] = <q_k_bar, r_{k+1}_bar>`` for ``k = 1..m-1`` (Theorem 3(ii)). ``s`` is
    ``sigma_max(T)^(1/m)``.
    """

    s: float
    singular_values: list[np.ndarray]
    path_gain: np.ndarray
    matched: np.ndarray
    matched_value: np.ndarray
    interface_cos: np.ndarray
    link_cos: np.ndarray


def layer_path(weights: Any, T: Any) -> LayerPath:
    """The vectors ``r_k``, ``q_k`` of Theorem 3 and the singular pairs of each ``W_k`` they use.

    ``r_k = W_{k-1} ... W_1 v`` and ``q_k = (Wm ... W_{k+1})^T u``; at a flattest minimum
    ``(q_k_bar, r_k_bar)`` is a singular pair of ``W_k`` with value ``sigma_max^(1/m)``
    (Theorem 3(i)) and ``r_{k+1}_bar = q_k_bar`` (Theorem 3(ii)), so every entry of
    ``interface_cos`` and ``link_cos`` is 1. Computed from ``np.linalg.svd`` of each layer.
    """
    ws = as_weights(weights)
    t = linear.as_target_matrix(T)
    rb, qb = linear.signal_path(ws, t)
    m = len(ws)
    uu, s, vt = np.linalg.svd(t)
    u, v = uu[:, 0], vt[0]
    svals, matched, lefts, rights = [], [], [], []
    for w, rk in zip(ws, rb, strict=True):
        a, sv, bt = np.linalg.svd(w)
        n = sv.size
        j = int(np.argmax(np.abs(bt[:n] @ rk)))
        sign = np.sign(bt[j] @ rk) or 1.0
        svals.append(sv)
        matched.append(j)
        rights.append(sign * bt[j])
        lefts.append(sign * a[:, j])
    chain = [abs(v @ rights[0])]
    chain += [abs(lefts[k] @ rights[k + 1]) for k in range(m - 1)]
    chain.append(abs(lefts[-1] @ u))
    return LayerPath(
        s=float(s[0] ** (1.0 / m)),
        singular_values=svals,
        path_gain=np.array([np.linalg.norm(w @ rk) for w, rk in zip(ws, rb, strict=True)]),
        matched=np.array(matched),
        matched_value=np.array([sv[j] for sv, j in zip(svals, matched, strict=True)]),
        interface_cos=np.array(chain),
        link_cos=np.array([qb[k] @ rb[k + 1] for k in range(m - 1)]),
    )


def _draw_path(ax: Axes, bx: Axes, path: LayerPath, name: str) -> None:
    m = len(path.singular_values)
    ks = np.arange(1, m + 1)
    _dots(ax, path.singular_values, "singular values of $W_k$")
    ax.plot(
        ks,
        path.matched_value,
        "o",
        mfc="none",
        color=V_COLOR,
        ms=11,
        mew=1.5,
        label="the one whose right vector is closest to $\\bar{\\mathbf{r}}_k$",
    )
    ax.axhline(path.s, **BOUND_STYLE, label="$\\sigma_{\\max}(T)^{1/m}$")
    ax.set_ylim(0, None)
    ax.set_xticks(list(ks))
    ax.set_xlabel("layer k")
    ax.set_ylabel("singular values")
    ax.set_title(f"{name}: each layer's singular values", fontsize=9)
    ticks = ["$\\mathbf{v}$|$W_1$"] + [f"$W_{k}$|$W_{k + 1}$" for k in ks[:-1]]
    ticks.append(f"$W_{m}$|$\\mathbf{{u}}$")
    bx.bar(
        np.arange(m + 1),
        path.interface_cos,
        color="tab:purple",
        alpha=0.8,
        label="consecutive singular vectors",
    )
    bx.plot(
        np.arange(1, m),
        path.link_cos,
        "D",
        color="k",
        ms=5,
        label="$\\langle\\bar{\\mathbf{q}}_k, \\bar{\\mathbf{r}}_{k+1}\\rangle$",
    )
    bx.axhline(1.0, color="k", ls=":", lw=1)
    bx.set_ylim(0, 1.12)
    bx.set_xticks(np.arange(m + 1), ticks, fontsize=7, rotation=30)
    bx.set_ylabel("|cos angle|")
    bx.set_title(f"{name}: do consecutive layers share a singular vector?", fontsize=9)


def plot_layer_path(flattest_weights: Any, random_weights: Any, T: Any) -> Figure:
    """Theorem 3 drawn per layer for a flattest (top) and a random (bottom) minimum of ``T``.

    Left: singular values of each ``W_k`` (blue), the one that carries ``r_k_bar`` (red
    circle; see :func:`layer_path`) and ``sigma_max(T)^(1/m)`` (dotted, Theorem 3(i)).
    Right: ``|cos|`` between the matched left singular vector of ``W_k`` and right singular
    vector of ``W_{k+1}`` (bars; ``v`` and ``u`` at the ends) and ``<q_k_bar, r_{k+1}_bar>``
    (diamonds); Theorem 3(ii) puts all of them at 1 for a flattest minimum.
    """
    fig = new_figure(figsize=(10, 6), layout="constrained")
    axes = fig.subplots(2, 2, gridspec_kw={"width_ratios": [1, 1.2]})
    for row, (w, name) in enumerate(((flattest_weights, "flattest"), (random_weights, "random"))):
        _draw_path(axes[row, 0], axes[row, 1], layer_path(w, T), name)
    fig.legend(
        handles=[*axes[0, 0].get_lines(), *axes[0, 1].get_lines()[:1], axes[0, 1].containers[0]],
        loc="outside upper center",
        ncol=3,
        fontsize=8,
    )
    return fig


def coupling_slider(
    depths: Sequence[int] = (2, 3, 4, 6), seeds: Sequence[int] = (0, 1), d: int = 3
) -> SliderFigure:
    """Slider over depth ``m`` and seed for :func:`plot_layer_path` (Theorem 3).

    ``T = target_map(d, seed=d)``; the seed picks ``random_minimum(T, m, seed)`` (eq. S104),
    drawn at the bottom, and the top shows the flattest minimum that gauge descent reaches
    from it (:func:`gains_pair`).
    """
    d = as_int(d, "d", minimum=1)

    def draw(m: int, seed: int) -> Figure:
        t = target_map(d, seed=d)
        start, run = gains_pair(t, m, seed)
        return plot_layer_path(run.weights, start, t)

    return slider_figure(
        draw,
        {"m": list(depths), "seed": list(seeds)},
        defaults={"m": 4 if 4 in depths else depths[0], "seed": seeds[0]},
        labels={"m": "depth m", "seed": "random minimum (seed)"},
    )
