"""Checks of flatlib.curvature.hessian (HVPs, eigensolvers, spectra, cross-sections) and
flatlib.nets.models.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from flatlib.curvature import hessian as fh
from flatlib.nets.models import mlp

DT = torch.float64


def _data(n=37, d_in=4, d_out=3, classes=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d_in, generator=gen, dtype=DT)
    if classes:
        y = torch.randint(0, d_out, (n,), generator=gen)
    else:
        y = torch.randn(n, d_out, generator=gen, dtype=DT)
    return x, y


def _problem(activation="tanh", loss="mse", seed=0, n=37):
    model = mlp([4, 6, 6, 3], activation=activation, init="he", seed=seed)
    with torch.no_grad():  # non-zero biases: a generic point, no tied ReLU kinks
        for p in model.parameters():
            if p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(7)))
    x, y = _data(n=n, classes=(loss == "ce"), seed=seed)
    loss_fn = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
    return model, loss_fn, x, y


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


# --------------------------------------------------------------------------- exact


def test_exact_hessian_matches_torch_func_hessian():
    model, loss_fn, x, y = _problem("tanh", "mse")
    params = fh.trainable_parameters(model)
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in params]
    sizes = [p.numel() for p in params]
    theta = fh.get_vector(model)

    def loss_of(vec):
        pieces = [t.view(s) for t, s in zip(vec.split(sizes), shapes, strict=True)]
        out = torch.func.functional_call(model, dict(zip(names, pieces, strict=True)), (x,))
        return loss_fn(out, y)

    ref = torch.func.hessian(loss_of)(theta).numpy()
    H = fh.exact_hessian(fh.HessianOperator(model, loss_fn, x, y, chunk_size=10), block=16)
    assert H.shape == (theta.numel(), theta.numel())
    assert np.max(np.abs(H - ref)) <= 1e-12 * np.max(np.abs(ref))
    ev = fh.spectrum(fh.HessianOperator(model, loss_fn, x, y), method="exact")
    assert np.all(np.diff(ev) >= 0)
    np.testing.assert_allclose(ev, np.linalg.eigvalsh(ref), atol=1e-12)


def test_exact_hessian_refuses_big_models():
    model = mlp([200, 200], seed=0)  # N = 40200
    x, y = torch.randn(3, 200, dtype=DT), torch.randn(3, 200, dtype=DT)
    with pytest.raises(ValueError, match="N=40200"):
        fh.exact_hessian(fh.HessianOperator(model, nn.MSELoss(), x, y))


# ---------------------------------------------------------------------- eigenpairs


@pytest.mark.parametrize("method", ["lanczos", "power"])
@pytest.mark.parametrize(
    "activation,loss", [("relu", "mse"), ("tanh", "mse"), ("relu", "ce"), ("tanh", "ce")]
)
def test_top_and_bottom_eigenpairs_match_exact(method, activation, loss):
    model, loss_fn, x, y = _problem(activation, loss)
    H = fh.exact_hessian(fh.HessianOperator(model, loss_fn, x, y))
    ev = torch.linalg.eigvalsh(torch.as_tensor(H)).numpy()
    for which, ref in (("largest", ev[-1]), ("smallest", ev[0])):
        res = fh.top_eigenpairs(
            model, loss_fn, x, y, method=method, which=which, tol=1e-7, max_iter=20000
        )
        assert res.converged, (which, res)
        lam = res.eigenvalues[0]
        assert abs(lam - ref) <= res.error_bounds[0] <= 1e-7 * abs(lam), (which, lam, ref)
        v = res.eigenvectors[0]
        assert abs(np.linalg.norm(v) - 1) < 1e-10
        true_res = np.linalg.norm(H @ v - lam * v)
        assert abs(res.residuals[0] - true_res) <= 1e-8 * abs(lam) + 1e-12
        assert res.num_hvps >= 1


def test_lanczos_k_pairs_and_far_fewer_hvps_than_power():
    model, loss_fn, x, y = _problem("tanh", "mse")
    ev = np.linalg.eigvalsh(fh.exact_hessian(fh.HessianOperator(model, loss_fn, x, y)))
    lz = fh.top_eigenpairs(model, loss_fn, x, y, k=3, tol=1e-10)
    assert lz.converged
    np.testing.assert_allclose(lz.eigenvalues, ev[::-1][:3], rtol=1e-9)
    assert np.all(np.diff(lz.eigenvalues) <= 0)
    gram = lz.eigenvectors @ lz.eigenvectors.T
    np.testing.assert_allclose(gram, np.eye(3), atol=1e-8)
    sm = fh.top_eigenpairs(model, loss_fn, x, y, k=2, which="smallest", tol=1e-10)
    np.testing.assert_allclose(sm.eigenvalues, ev[:2][::-1], rtol=1e-9)
    pw = fh.top_eigenpairs(model, loss_fn, x, y, method="power", tol=1e-8)
    one = fh.top_eigenpairs(model, loss_fn, x, y, tol=1e-8)
    assert one.num_hvps * 3 < pw.num_hvps


def test_power_reports_unconverged_honestly():
    model, loss_fn, x, y = _problem("tanh", "mse")
    res = fh.top_eigenpairs(model, loss_fn, x, y, method="power", tol=1e-10, max_iter=3)
    assert not res.converged
    assert res.num_hvps == 3
    assert res.residuals[0] > 1e-10 * abs(res.eigenvalues[0])


def test_warm_start_needs_fewer_hvps():
    model, loss_fn, x, y = _problem("tanh", "mse")
    first = fh.top_eigenpairs(model, loss_fn, x, y, tol=1e-10)
    # one small gradient step, as when tracking sharpness during training
    g = fh.full_gradient(fh.HessianOperator(model, loss_fn, x, y))
    fh.set_vector(model, fh.get_vector(model) - 1e-3 * g)
    cold = fh.top_eigenpairs(model, loss_fn, x, y, tol=1e-10, seed=3)
    warm = fh.top_eigenpairs(model, loss_fn, x, y, tol=1e-10, v0=first.eigenvectors)
    assert cold.converged and warm.converged
    assert abs(warm.eigenvalues[0] - cold.eigenvalues[0]) <= 1e-9 * abs(cold.eigenvalues[0])
    assert warm.num_hvps < cold.num_hvps
    pw_cold = fh.top_eigenpairs(model, loss_fn, x, y, method="power", tol=1e-6, seed=3)
    pw_warm = fh.top_eigenpairs(
        model, loss_fn, x, y, method="power", tol=1e-6, v0=first.eigenvectors[0]
    )
    assert pw_warm.num_hvps < pw_cold.num_hvps


# ----------------------------------------------------------------------------- HVPs


@pytest.mark.parametrize("loss", ["mse", "ce"])
def test_chunked_and_backends_agree(loss):
    model, loss_fn, x, y = _problem("tanh", loss, n=37)
    ref = fh.hvp(model, loss_fn, x, y, backend="double_backward")
    assert ref.num_params == sum(p.numel() for p in model.parameters())
    v = torch.randn(ref.num_params, generator=torch.Generator().manual_seed(1), dtype=DT)
    hv = ref(v)
    assert hv.dtype == DT and hv.shape == v.shape
    variants = [
        fh.hvp(model, loss_fn, x, y, chunk_size=10),  # 10, 10, 10, 7
        fh.hvp(model, loss_fn, x, y, chunk_size=10, cache_graph=False),
        fh.hvp(model, loss_fn, x, y, backend="forward_over_reverse"),
        fh.hvp(model, loss_fn, x, y, chunk_size=10, backend="forward_over_reverse"),
    ]
    for op in variants:
        assert _rel(op(v).numpy(), hv.numpy()) <= 1e-12, op
        assert op.num_calls == 1
    # an unweighted mean of chunk means would be biased by the small last chunk
    n_c = [10, 10, 10, 7]
    biased = (
        sum(
            fh.hvp(model, loss_fn, x[i : i + c], y[i : i + c])(v)
            for i, c in zip([0, 10, 20, 30], n_c, strict=True)
        )
        / 4
    )
    assert _rel(biased.numpy(), hv.numpy()) > 1e-6
    assert (
        abs(
            fh.full_loss(fh.HessianOperator(model, loss_fn, x, y, chunk_size=10))
            - fh.full_loss(fh.HessianOperator(model, loss_fn, x, y))
        )
        <= 1e-14
    )
    g1 = fh.full_gradient(fh.HessianOperator(model, loss_fn, x, y, chunk_size=10))
    g2 = fh.full_gradient(fh.HessianOperator(model, loss_fn, x, y))
    assert _rel(g1.numpy(), g2.numpy()) <= 1e-13
    assert ref.num_calls == 1
    H = fh.exact_hessian(fh.HessianOperator(model, loss_fn, x, y))
    assert _rel(H @ v.numpy(), hv.numpy()) <= 1e-12


def test_determinism_refusal():
    x, y = _data()
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Dropout(0.3), nn.Linear(8, 3)).to(DT)
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        fh.hvp(model, nn.MSELoss(), x, y)
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        fh.top_eigenpairs(model, nn.MSELoss(), x, y)
    model.eval()
    fh.hvp(model, nn.MSELoss(), x, y)  # fine once in eval mode
    bn = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)).to(DT)
    with pytest.raises(ValueError, match=r"model\.eval\(\)"):
        fh.hvp(bn, nn.MSELoss(), x, y, chunk_size=10)
    # a loss that is random itself (no module to blame): caught numerically
    model2 = mlp([4, 5, 3], seed=0)

    def noisy(out, target):
        return nn.functional.mse_loss(out * (1 + 0.1 * torch.rand(())), target)

    for backend in ("double_backward", "forward_over_reverse"):
        with pytest.raises(ValueError, match="differ"):
            fh.hvp(model2, noisy, x, y, backend=backend)


def test_bad_arguments_name_the_argument():
    model, loss_fn, x, y = _problem()
    n = sum(p.numel() for p in model.parameters())
    cases = [
        (dict(k=0), "k"),
        (dict(k=n + 1), "k"),
        (dict(v0=torch.full((n,), float("nan"), dtype=DT)), "v0"),
        (dict(v0=torch.ones(n + 1, dtype=DT)), "v0"),
        (dict(method="arnoldi"), "method"),
        (dict(which="biggest"), "which"),
        (dict(chunk_size=0), "chunk_size"),
        (dict(tol=-1.0), "tol"),
    ]
    for kwargs, name in cases:
        with pytest.raises(ValueError, match=name):
            fh.top_eigenpairs(model, loss_fn, x, y, **kwargs)
    with pytest.raises(ValueError, match="targets"):
        fh.top_eigenpairs(model, loss_fn, x, y[:-1])
    with pytest.raises(ValueError, match="targets"):
        fh.hvp(model, loss_fn, x[:5], y)
    with pytest.raises(ValueError, match="backend"):
        fh.hvp(model, loss_fn, x, y, backend="magic")
    op = fh.hvp(model, loss_fn, x, y)
    with pytest.raises(ValueError, match="v"):
        op(torch.ones(n - 1, dtype=DT))
    with pytest.raises(ValueError, match="direction"):
        fh.cross_section(fh.HessianOperator(model, loss_fn, x, y), torch.ones(3, dtype=DT), [0.0])
    with pytest.raises(ValueError, match="radii"):
        fh.cross_section(
            fh.HessianOperator(model, loss_fn, x, y), torch.ones(n, dtype=DT), [0.0, np.inf]
        )


# ------------------------------------------------------------------- cross sections


def test_cross_section_and_interpolate_endpoints_and_restore():
    model, loss_fn, x, y = _problem("relu", "mse")
    other, _, _, _ = _problem("relu", "mse", seed=5)
    theta = fh.get_vector(model)
    d = torch.randn(theta.numel(), generator=torch.Generator().manual_seed(2), dtype=DT)
    losses = fh.cross_section(
        fh.HessianOperator(model, loss_fn, x, y, chunk_size=10), d, [0.0, 0.5, 1.0]
    )
    assert torch.equal(fh.get_vector(model), theta)
    assert abs(losses[0] - fh.full_loss(fh.HessianOperator(model, loss_fn, x, y))) <= 1e-14
    moved = mlp([4, 6, 6, 3], seed=0)
    fh.set_vector(moved, theta + d)
    assert abs(losses[2] - fh.full_loss(fh.HessianOperator(moved, loss_fn, x, y))) <= 1e-12
    assert losses[1] != losses[0]

    theta_b = fh.get_vector(other)
    path = fh.interpolate(
        fh.HessianOperator(model, loss_fn, x, y, chunk_size=8), other, [0.0, 0.5, 1.0]
    )
    assert torch.equal(fh.get_vector(model), theta)
    assert torch.equal(fh.get_vector(other), theta_b)
    assert abs(path[0] - fh.full_loss(fh.HessianOperator(model, loss_fn, x, y))) <= 1e-14
    assert abs(path[2] - fh.full_loss(fh.HessianOperator(other, loss_fn, x, y))) <= 1e-12

    def broken(out, target):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        fh.cross_section(fh.HessianOperator(model, broken, x, y), d, [1.0])
    assert torch.equal(fh.get_vector(model), theta)


def test_sharpest_cross_section_curvature_is_lambda_max():
    model, loss_fn, x, y = _problem("tanh", "mse")
    res = fh.top_eigenpairs(model, loss_fn, x, y, tol=1e-10)
    h = 1e-4
    f = fh.cross_section(
        fh.HessianOperator(model, loss_fn, x, y), res.eigenvectors[0], [-h, 0.0, h]
    )
    curvature = (f[0] - 2 * f[1] + f[2]) / h**2
    assert abs(curvature - res.eigenvalues[0]) <= 1e-4 * res.eigenvalues[0]


# ------------------------------------------------------------------------ spectrum


def test_slq_density():
    model, loss_fn, x, y = _problem("tanh", "mse")
    ev = np.linalg.eigvalsh(fh.exact_hessian(fh.HessianOperator(model, loss_fn, x, y)))
    n = ev.size
    nodes, weights = fh.spectrum(
        fh.HessianOperator(model, loss_fn, x, y),
        method="slq",
        num_probes=4,
        lanczos_steps=n,
        seed=1,
    )
    assert abs(weights.sum() - 1) <= 1e-12
    assert np.all(weights >= 0)
    assert abs(nodes.max() - ev[-1]) <= 1e-8 * abs(ev[-1])
    assert abs(nodes.min() - ev[0]) <= 1e-8 * abs(ev[0])
    # with full Krylov spaces, quadrature of x equals z'Hz/||z||^2 = trace/N for Rademacher z
    # only in expectation; second moment test with a single probe is exact per probe:
    short = fh.spectrum(
        fh.HessianOperator(model, loss_fn, x, y), method="slq", num_probes=50, lanczos_steps=10
    )
    assert abs(np.sum(short.weights * short.nodes) - ev.mean()) <= 0.2 * np.abs(ev).mean()
    grid = np.linspace(ev[0] - 1, ev[-1] + 1, 4001)
    dens = fh.density(nodes, weights, grid, sigma=0.05)
    assert abs(np.trapezoid(dens, grid) - 1) <= 1e-6


# -------------------------------------------------------------------------- models


def test_mlp_identity_and_he_init():
    net = mlp([5, 5, 5, 5], activation="relu", init="identity")
    x = torch.rand(9, 5, dtype=DT)
    assert torch.equal(net(x), x)
    assert len(net) == 5 and isinstance(net[-1], nn.Linear)
    a, b = mlp([6, 7, 2], seed=3), mlp([6, 7, 2], seed=3)
    c = mlp([6, 7, 2], seed=4)
    assert torch.equal(fh.get_vector(a), fh.get_vector(b))
    assert not torch.equal(fh.get_vector(a), fh.get_vector(c))
    assert torch.all(a[0].bias == 0)
    big = mlp([400, 400], seed=0, bias=False)
    assert abs(big[0].weight.std().item() - (2 / 400) ** 0.5) < 0.01
    assert mlp([3, 3], dtype=torch.float32)[0].weight.dtype == torch.float32
    with pytest.raises(ValueError, match="identity"):
        mlp([4, 5, 4], init="identity")
    with pytest.raises(ValueError, match="activation"):
        mlp([4, 4], activation="gelu")


def test_float32_reaches_documented_accuracy():
    model, loss_fn, x, y = _problem("tanh", "mse")
    ref = fh.top_eigenpairs(model, loss_fn, x, y, tol=1e-10).eigenvalues[0]
    model32 = model.to(torch.float32)
    res = fh.top_eigenpairs(model32, loss_fn, x.float(), y.float(), tol=1e-4)
    assert res.converged
    assert abs(res.eigenvalues[0] - ref) <= 1e-4 * abs(ref)


# ------------------------------------------------------------- certified eigenvalue bounds


def test_eigenvalue_bounds_on_a_known_spectrum():
    """Kato-Temple on diag(3, 1, 0.5): a tilted vector's error is inside r**2 / gap and r."""
    from flatlib.curvature.lanczos import eigenvalue_bounds

    lam = np.array([3.0, 1.0, 0.5])
    for angle in (1e-1, 1e-2, 1e-3):
        v = np.array([np.cos(angle), np.sin(angle), 0.0])
        theta = float(v @ (lam * v))
        r = float(np.linalg.norm(lam * v - theta * v))
        plain = eigenvalue_bounds([theta], [r])[0]
        gapped = eigenvalue_bounds([theta], [r], [1.0], [0.0])[0]
        err = abs(lam[0] - theta)
        assert plain == pytest.approx(r) and err <= plain
        assert err <= gapped <= plain
        assert gapped == pytest.approx(r**2 / (theta - 1.0 - r), rel=1e-12)
    # an unconverged neighbour (large residual) leaves only the plain bound
    assert eigenvalue_bounds([3.0], [1e-3], [2.9], [0.2])[0] == pytest.approx(1e-3)
    assert eigenvalue_bounds([3.0], [1e-3], [1.0], [0.5])[0] == pytest.approx(1e-3)


@pytest.mark.parametrize("activation, loss", [("relu", "mse"), ("tanh", "ce")])
@pytest.mark.parametrize("k", [1, 3])
def test_certified_bound_is_never_below_the_true_error(activation, loss, k):
    """Default tol (1e-4 relative in the eigenvalue) against a tol 1e-11 reference."""
    model, loss_fn, x, y = _problem(activation, loss, n=60)
    op = fh.hvp(model, loss_fn, x, y)
    ref = fh.eigenpairs(op, k, tol=1e-11)
    exact = np.linalg.eigvalsh(fh.exact_hessian(op))[::-1][:k]
    assert ref.converged
    np.testing.assert_allclose(ref.eigenvalues, exact, rtol=1e-9)
    for seed in range(5):
        res = fh.eigenpairs(op, k, seed=seed)
        err = np.abs(res.eigenvalues - ref.eigenvalues)
        assert res.converged and fh.DEFAULT_TOL == 1e-4
        assert np.all(err <= res.error_bounds), (err, res.error_bounds)
        assert np.all(res.error_bounds <= 1e-4 * np.abs(res.eigenvalues))
        assert res.num_hvps < ref.num_hvps
