"""Sharpness (lambda_max of the training-loss Hessian): flatlib vs PyHessian vs curvlinops.

Run from the repository root::

    .venv/bin/pip install -r benchmarks/requirements.txt
    .venv/bin/python benchmarks/bench_hessian.py            # 5 seeds
    .venv/bin/python benchmarks/bench_hessian.py --quick    # 2 seeds, smoke run

For every solver and target relative error (1e-4, 1e-8 in lambda_max) the solver's own
tolerance is tightened decade by decade (1e-1, 1e-2, ...) until its answer meets the
target; the HVP count and wall time of that first successful run are recorded (so every
solver gets the loosest tolerance that works for it), and the median over seeds (seeds of
the random start vector) is reported. Wall time includes building the operator (graph
construction and each library's determinism check where it has one). The reference
lambda_max is flatlib Lanczos at tol=1e-11 (in float64), cross-checked against curvlinops +
eigsh. All solvers of one workload run in the same dtype: float64 on the CPU for (a) and (b),
float32 for (c) (width 784) and for everything on CUDA; float32 workloads only have the 1e-4
target.

Each workload also gets a *defaults* row: ``top_eigenpairs(model, loss, x, y)`` and
PyHessian's ``eigenvalues()`` with no options, their time ratio and errors, and flatlib's
certified error bound beside its true error.
"""

from __future__ import annotations

import argparse
import copy
import math
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import scipy.sparse.linalg
import torch
from torch import nn

from flatlib.curvature import hessian as fh
from flatlib.nets.models import mlp

TARGETS = (1e-4, 1e-8)
TARGETS_FLOAT32 = (1e-4,)
LADDER = [10.0**-e for e in range(1, 13)]


# ------------------------------------------------------------------------ workloads


def denoising_data(n, side, dtype, device, seed=0):
    """MNIST-like denoising pairs: smooth blob images in [0, 1] plus N(0, 1.25^2) noise."""
    gen = torch.Generator().manual_seed(seed)
    grid = torch.linspace(-1, 1, side, dtype=torch.float64)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    clean = torch.zeros(n, side, side, dtype=torch.float64)
    for _ in range(3):  # three random strokes/blobs per image
        cx, cy = (torch.rand(2, n, 1, 1, generator=gen) * 1.4 - 0.7).double()
        sx, sy = (torch.rand(2, n, 1, 1, generator=gen) * 0.3 + 0.1).double()
        clean += torch.exp(-((xx - cx) ** 2) / (2 * sx**2) - ((yy - cy) ** 2) / (2 * sy**2))
    clean = clean.clamp(0, 1).reshape(n, -1)
    noisy = clean + 1.25 * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    return noisy.to(dtype=dtype, device=device), clean.to(dtype=dtype, device=device)


def train(model, loss_fn, x, y, steps, lr):
    """A few full-batch Adam steps so the Hessian is taken near (not at) a minimum."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
    opt.zero_grad(set_to_none=True)
    return model.eval()


def workload_a(dtype, device, width_side=14):
    d = width_side * width_side
    x, y = denoising_data(1000, width_side, dtype, device)
    model = mlp([d] * 7, activation="relu", init="he", seed=0, dtype=dtype).to(device)
    loss_fn = nn.MSELoss()
    return train(model, loss_fn, x, y, steps=100, lr=1e-3), loss_fn, x, y


def workload_b(dtype, device):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(1000, 196, generator=gen, dtype=torch.float64)
    teacher = torch.randn(196, 10, generator=gen, dtype=torch.float64)
    y = (torch.tanh(x @ teacher / 14) + 0.3 * torch.randn(1000, 10, generator=gen)).argmax(1)
    model = mlp([196, 128, 128, 128, 10], activation="tanh", seed=0, dtype=dtype).to(device)
    loss_fn = nn.CrossEntropyLoss()
    x = x.to(dtype=dtype, device=device)
    y = y.to(device)
    return train(model, loss_fn, x, y, steps=100, lr=1e-3), loss_fn, x, y


# -------------------------------------------------------------------------- solvers


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_flatlib(model, loss_fn, x, y, tol, seed, method="lanczos"):
    t0 = time.perf_counter()
    res = fh.top_eigenpairs(model, loss_fn, x, y, tol=tol, seed=seed, method=method)
    sync(x.device)
    return res.eigenvalues[0], res.num_hvps + 2, time.perf_counter() - t0  # +2: check


class _Done(Exception):
    pass


def pyhessian_ladder(model, loss_fn, x, y, ref, seed, budget_s, targets=TARGETS):
    """PyHessian's power iteration replayed for every ladder tolerance from ONE run.

    PyHessian's iterates do not depend on ``tol`` (it only decides when to stop: relative
    change of consecutive Rayleigh quotients ``< tol``), so one run that records the
    Rayleigh quotient and the clock after every HVP gives, for each ``tol``, exactly the
    stopping iteration, answer, HVP count and wall time a separate run would have.
    """
    import pyhessian  # noqa: F401  (registers the submodule)

    ph = sys.modules["pyhessian.hessian"]
    original = ph.hessian_vector_product
    est, stamps = [], []
    found = {}

    def stop_index(tol):
        for i in range(1, len(est)):
            if abs(est[i - 1] - est[i]) / (abs(est[i - 1]) + 1e-6) < tol:
                return i
        return None

    def resolve():
        for target in targets:
            if target in found:
                continue
            for tol in LADDER:
                i = stop_index(tol)
                if i is None:
                    break  # tighter tolerances stop even later
                if abs(est[i] - ref) / abs(ref) <= target:
                    found[target] = (i + 1, stamps[i] - t0, tol)
                    break

    def counted(gradsH, params, v):
        hv = original(gradsH, params, v)
        sync(x.device)
        stamps.append(time.perf_counter())
        est.append(float(sum(torch.sum(a * b) for a, b in zip(hv, v, strict=True))))
        resolve()
        # stop once every ladder tolerance would have stopped (nothing more to learn)
        exhausted = stop_index(LADDER[-1]) is not None
        if len(found) == len(targets) or exhausted or stamps[-1] - t0 > budget_s:
            raise _Done
        return hv

    ph.hessian_vector_product = counted
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(x.dtype)  # PyHessian draws its start vector in the default dtype
    torch.manual_seed(seed)
    try:
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        comp = ph.hessian(model, loss_fn, data=(x, y), cuda=x.device.type == "cuda")
        comp.eigenvalues(maxIter=3000, tol=0.0, top_n=1)
    except _Done:
        pass
    finally:
        ph.hessian_vector_product = original
        torch.set_default_dtype(old_dtype)
        model.zero_grad(set_to_none=True)
    return found


def run_curvlinops(model, loss_fn, x, y, tol, seed):
    from curvlinops import HessianLinearOperator

    params = [p for p in model.parameters() if p.requires_grad]
    t0 = time.perf_counter()
    op = HessianLinearOperator(model, loss_fn, params, [(x, y)])
    sop = op.to_scipy(dtype=np.float64)
    count = [0]

    def mv(v):
        count[0] += 1
        return sop.matvec(v)

    lin = scipy.sparse.linalg.LinearOperator(sop.shape, matvec=mv, dtype=np.float64)
    v0 = np.random.default_rng(seed).standard_normal(sop.shape[0])
    vals = scipy.sparse.linalg.eigsh(
        lin, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False
    )
    sync(x.device)
    return float(vals[0]), count[0], time.perf_counter() - t0


def run_flatlib_eigsh(model, loss_fn, x, y, tol, seed):
    """flatlib's HVP operator under scipy eigsh: isolates the eigensolver from the HVP."""
    t0 = time.perf_counter()
    op = fh.hvp(model, loss_fn, x, y)
    v0 = np.random.default_rng(seed).standard_normal(op.num_params)
    vals = scipy.sparse.linalg.eigsh(
        op.to_scipy(), k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False
    )
    sync(x.device)
    return float(vals[0]), op.num_calls + 2, time.perf_counter() - t0


SOLVERS = {
    "flatlib lanczos": run_flatlib,
    "flatlib power": lambda *a: run_flatlib(*a, method="power"),
    "flatlib HVP + eigsh": run_flatlib_eigsh,
    "curvlinops+eigsh": run_curvlinops,
}


def to_target(solver, problem, ref, seed, budget_s, targets=TARGETS):
    """First ladder tolerance whose answer meets each target: {target: (hvps, seconds, tol)}."""
    found = {}
    spent = 0.0
    for tol in LADDER:
        lam, hvps, secs = solver(*problem, tol, seed)
        spent += secs
        err = abs(lam - ref) / abs(ref)
        for target in targets:
            if target not in found and err <= target:
                found[target] = (hvps, secs, tol)
        if len(found) == len(targets) or spent > budget_s:
            break
    return found


def timings(problem, reps=5):
    model, loss_fn, x, y = problem
    device = x.device

    def grad_once():
        model.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        sync(device)

    grad_once()
    op = fh.hvp(model, loss_fn, x, y)
    v = torch.randn(op.num_params, dtype=x.dtype, device=device)
    op(v)
    grads, hvps = [], []
    for _ in range(reps * 3):  # interleaved pairs: both see the same machine load
        t0 = time.perf_counter()
        grad_once()
        t1 = time.perf_counter()
        op(v)
        sync(device)
        t2 = time.perf_counter()
        grads.append(t1 - t0)
        hvps.append(t2 - t1)
    model.zero_grad(set_to_none=True)
    t0 = time.perf_counter()
    fh.hvp(model, loss_fn, x, y)
    sync(device)
    build = time.perf_counter() - t0
    return statistics.median(grads), statistics.median(hvps), build, op.num_params, op.backend


def defaults_row(problem, ref, seed=0):
    """Both libraries called with no options: time, HVPs, relative error; flatlib's bound."""
    model, loss_fn, x, y = problem
    t0 = time.perf_counter()
    res = fh.top_eigenpairs(model, loss_fn, x, y, seed=seed)
    sync(x.device)
    t_flat = time.perf_counter() - t0
    import pyhessian  # noqa: F401

    ph = sys.modules["pyhessian.hessian"]
    old_dtype = torch.get_default_dtype()
    torch.set_default_dtype(x.dtype)
    torch.manual_seed(seed)
    try:
        model.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        comp = ph.hessian(model, loss_fn, data=(x, y), cuda=x.device.type == "cuda")
        vals, _ = comp.eigenvalues()
        sync(x.device)
        t_ph = time.perf_counter() - t0
    finally:
        torch.set_default_dtype(old_dtype)
        model.zero_grad(set_to_none=True)
    lam = float(res.eigenvalues[0])
    err_flat = abs(lam - ref) / abs(ref)
    err_ph = abs(float(vals[0]) - ref) / abs(ref)
    bound = float(res.error_bounds[0]) / abs(lam)
    print("\n| defaults | time s | HVPs | relative error | certified bound |")
    print("|---|---|---|---|---|")
    print(f"| flatlib top_eigenpairs() | {t_flat:.3f} | {res.num_hvps + 2} | {err_flat:.1e} "
          f"| {bound:.1e} |")  # fmt: skip
    print(f"| PyHessian eigenvalues() | {t_ph:.3f} | - | {err_ph:.1e} | - |")
    print(
        f"defaults ratio: flatlib/PyHessian time = {t_flat / t_ph:.3f}; flatlib error "
        f"{err_flat:.1e} {'<=' if err_flat <= 1e-4 else '>'} 1e-4; certified bound "
        f"{'covers' if abs(lam - ref) <= res.error_bounds[0] else 'MISSES'} the true error"
    )
    return t_flat / t_ph, err_flat, abs(lam - ref) <= res.error_bounds[0]


def bench(name, problem, seeds, budget_s, reference=None, targets=TARGETS):
    """One workload: HVP cost, the defaults row and every solver at each target accuracy.

    ``reference`` is a float64 copy of the problem for the reference lambda_max when the
    problem itself runs in float32.
    """
    model, loss_fn, x, y = problem
    g, h, build, n, backend = timings(problem)
    print(f"\n## {name}: N={n:,} parameters, {x.shape[0]} samples, {x.dtype}, {x.device}")
    print(
        f"one full-batch gradient {g * 1e3:.1f} ms; one flatlib HVP ({backend}) {h * 1e3:.1f} ms "
        f"= {h / g:.2f} gradients; operator build incl. determinism check {build * 1e3:.0f} ms"
    )
    ref_res = fh.top_eigenpairs(*(reference or problem), tol=1e-11)
    ref = float(ref_res.eigenvalues[0])
    cl, _, _ = run_curvlinops(*(reference or problem), 1e-10, 0)
    print(
        f"reference lambda_max = {ref:.12g} (flatlib lanczos tol 1e-11, converged="
        f"{ref_res.converged}); curvlinops+eigsh tol 1e-10 differs by {abs(cl - ref) / ref:.1e}"
    )
    defaults = defaults_row(problem, ref)
    table = {}
    for sname, solver in SOLVERS.items():
        per_seed = [to_target(solver, problem, ref, s, budget_s, targets) for s in seeds]
        table[sname] = per_seed
    table["PyHessian power"] = [
        pyhessian_ladder(*problem, ref, s, budget_s, targets) for s in seeds
    ]
    print("\n| solver | target | HVPs (median) | time s (median) | tol used | reached |")
    print("|---|---|---|---|---|---|")
    med = {}
    for sname, per_seed in table.items():
        for target in targets:
            hit = [r[target] for r in per_seed if target in r]
            if len(hit) < len(per_seed):
                print(f"| {sname} | {target:.0e} | - | - | - | {len(hit)}/{len(per_seed)} |")
                med[sname, target] = math.nan
                continue
            hv = statistics.median(r[0] for r in hit)
            tm = statistics.median(r[1] for r in hit)
            tols = sorted({r[2] for r in hit})
            med[sname, target] = tm
            tol_s = ",".join(f"{t:.0e}" for t in tols)
            print(
                f"| {sname} | {target:.0e} | {hv:g} | {tm:.3f} | {tol_s} | {len(hit)}/{len(hit)} |"
            )
    for target in targets:
        f = med["flatlib lanczos", target]
        ph_ratio = f / med["PyHessian power", target]
        cl_ratio = f / med["curvlinops+eigsh", target]
        print(
            f"ratio @ {target:.0e}: flatlib/PyHessian time = {ph_ratio:.3f}, "
            f"flatlib/curvlinops time = {cl_ratio:.3f}"
        )
    print(f"flatlib HVP cost = {h / g:.2f} full-batch gradients")
    return med, h / g, defaults


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds instead of 5")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: stable timings on a shared machine)",
    )
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per ladder")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="Using backward\\(\\) with create_graph=True")
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.float32 if cuda else torch.float64
    from importlib.metadata import version

    import pyhessian  # noqa: F401

    print(
        f"# bench_hessian: torch {torch.__version__}, "
        f"curvlinops {version('curvlinops-for-pytorch')}, "
        f"pyhessian {version('pyhessian')}, "
        f"python {platform.python_version()}, {torch.get_num_threads()} threads, "
        f"device {device}, dtype {dtype}, seeds {seeds}"
    )
    targets = TARGETS if dtype == torch.float64 else TARGETS_FLOAT32
    results = {
        "(a)": bench(
            "(a) 6-layer ReLU MLP width 196, MSE denoising",
            workload_a(dtype, device),
            seeds,
            args.budget,
            targets=targets,
        ),
        "(b)": bench(
            "(b) tanh MLP 196-128-128-128-10, cross-entropy",
            workload_b(dtype, device),
            seeds,
            args.budget,
            targets=targets,
        ),
    }
    wide = workload_a(torch.float64, device, width_side=28)
    model32 = copy.deepcopy(wide[0]).to(torch.float32)
    results["(c)"] = bench(
        "(c) 6-layer ReLU MLP width 784, MSE denoising, float32",
        (model32, wide[1], wide[2].float(), wide[3].float()),
        seeds,
        args.budget,
        reference=wide,
        targets=TARGETS_FLOAT32,
    )
    print("\n## Summary: flatlib time / peer time (median over seeds; < 1 is faster)")
    print("| workload | defaults vs PyHessian | bound covers error | "
          "1e-4 vs PyHessian | 1e-4 vs curvlinops | HVP / gradient |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, (med, hvp_cost, (ratio, _err, covered)) in results.items():
        ph = med["flatlib lanczos", 1e-4] / med["PyHessian power", 1e-4]
        cl = med["flatlib lanczos", 1e-4] / med["curvlinops+eigsh", 1e-4]
        print(f"| {name} | {ratio:.3f} | {covered} | {ph:.3f} | {cl:.3f} | {hvp_cost:.2f} |")


if __name__ == "__main__":
    main()
