"""The training loop: it learns, crops targets for valid nets, validates, checkpoints, resumes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import viz
from course_lib.training import History, evaluate, fit, load_checkpoint, save_checkpoint


def _toy_batches(n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    out = []
    for _ in range(n):
        x = torch.randn(2, 1, 12, 12, generator=g)
        out.append((x, (x[:, 0] > 0).long()))
    return out


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Conv2d(1, 2, 3, padding=1)


def test_fit_learns_and_records_history():
    model = _model()
    batches = _toy_batches()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    accuracy = {"accuracy": lambda out, y: (out.argmax(1) == y).float().mean()}
    history = fit(
        model,
        batches,
        F.cross_entropy,
        opt,
        iterations=40,
        val_batches=batches[:2],
        metrics=accuracy,
        val_every=10,
        progress=False,
    )
    assert history.steps == 40 and history.val_steps == [10, 20, 30, 40]
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.val["accuracy"][-1] > 0.95
    assert set(history.val) == {"loss", "accuracy"}
    assert model.training  # validation restored train mode
    assert viz.training_curves(history).axes  # draws without error


def test_epochs_count_passes_over_the_batches():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, _toy_batches(3), F.cross_entropy, opt, epochs=2, progress=False)
    assert history.steps == 6


def test_callable_batches_get_the_step_number():
    seen = []

    def batch(step):
        seen.append(step)
        return _toy_batches(1)[0]

    model = _model()
    fit(
        model,
        batch,
        F.cross_entropy,
        torch.optim.SGD(model.parameters(), lr=0.1),
        iterations=3,
        progress=False,
    )
    assert seen == [1, 2, 3]


def test_targets_and_weight_maps_are_cropped_to_a_valid_net_output():
    model = nn.Conv2d(1, 2, 5)  # valid: 12 -> 8
    x = torch.randn(1, 1, 12, 12)
    y = torch.zeros(1, 12, 12, dtype=torch.long)
    w = torch.ones(1, 12, 12)
    shapes = []

    def loss_fn(out, target, weight):
        shapes.append((target.shape, weight.shape))
        return (F.cross_entropy(out, target, reduction="none") * weight).mean()

    fit(
        model,
        [(x, y, w)],
        loss_fn,
        torch.optim.SGD(model.parameters(), lr=0.1),
        iterations=1,
        progress=False,
    )
    assert shapes == [((1, 8, 8), (1, 8, 8))]


def test_checkpoint_resume_equals_uninterrupted_run(tmp_path):
    batches = _toy_batches()

    def run(iterations, **kwargs):
        model = _model()
        opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.99)
        history = fit(
            model, batches, F.cross_entropy, opt, iterations=iterations, progress=False, **kwargs
        )
        return model, history

    straight, h_straight = run(10)
    path = tmp_path / "ckpt.pt"
    run(6, checkpoint=path)
    resumed, h_resumed = run(10, checkpoint=path, resume=True)
    assert h_resumed.steps == 10
    assert h_resumed.train_loss == pytest.approx(h_straight.train_loss)
    for a, b in zip(straight.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write left no temporary file


def test_checkpoint_roundtrip_uses_weights_only(tmp_path, monkeypatch):
    model = _model()
    opt = torch.optim.Adam(model.parameters())
    history = History(train_loss=[1.0, 0.5], val_steps=[2], val={"loss": [0.4]}, seconds=1.5)
    save_checkpoint(tmp_path / "c.pt", model, opt, history)
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    other = _model()
    with torch.no_grad():
        other.weight.zero_()
    assert (
        load_checkpoint(tmp_path / "c.pt", other, torch.optim.Adam(other.parameters())) == history
    )
    assert calls == [True]
    torch.testing.assert_close(other.weight, model.weight)


def test_evaluate_uses_eval_mode_and_predict():
    model = nn.Sequential(nn.Dropout(0.9), nn.Conv2d(1, 2, 1))
    batches = _toy_batches(2)
    a = evaluate(model, batches, F.cross_entropy)
    b = evaluate(model, batches, F.cross_entropy)
    assert a == b  # dropout is off
    doubled = evaluate(model, batches, F.cross_entropy, predict=lambda m, x: 0 * m(x))
    assert doubled["loss"] == pytest.approx(torch.log(torch.tensor(2.0)).item())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "exactly one"),
        (dict(iterations=2, epochs=1), "exactly one"),
        (dict(iterations=0), "positive int"),
        (dict(iterations=2, resume=True), "checkpoint"),
        (dict(iterations=2, clip_grad_norm=0.0), "clip_grad_norm must be positive"),
    ],
)
def test_bad_arguments_raise(kwargs, message):
    model = _model()
    with pytest.raises(ValueError, match=message):
        fit(
            model,
            _toy_batches(1),
            F.cross_entropy,
            torch.optim.SGD(model.parameters(), lr=0.1),
            progress=False,
            **kwargs,
        )


def test_bad_batches_raise():
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        fit(model, [], F.cross_entropy, opt, iterations=1, progress=False)
    with pytest.raises(ValueError, match="tuple"):
        fit(model, [torch.zeros(1, 1, 4, 4)], F.cross_entropy, opt, iterations=1, progress=False)
    with pytest.raises(ValueError, match="sized"):
        fit(model, lambda step: _toy_batches(1)[0], F.cross_entropy, opt, epochs=1, progress=False)


class _DeepSupervised(nn.Module):
    """Full-resolution logits plus a half-resolution copy, the package's auxiliary convention."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = _model()

    def forward(
        self, x: torch.Tensor, *, return_auxiliary: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        out = self.conv(x)
        return (out, [F.avg_pool2d(out, 2)]) if return_auxiliary else out


def test_auxiliary_outputs_reach_the_loss_and_targets_are_not_cropped():
    seen = []

    def loss_fn(outputs, y):
        logits, auxiliary = outputs
        seen.append(([tuple(o.shape) for o in (logits, *auxiliary)], tuple(y.shape)))
        return F.cross_entropy(logits, y) + 0.5 * auxiliary[0].square().mean()

    model = _DeepSupervised()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    fit(model, _toy_batches(1), loss_fn, opt, iterations=2, auxiliary=True, progress=False)
    assert seen[0] == ([(2, 2, 12, 12), (2, 2, 6, 6)], (2, 12, 12))
    assert model(torch.zeros(1, 1, 12, 12)).shape == (1, 2, 12, 12)  # a plain call: logits


def test_clip_grad_norm_bounds_each_step():
    # plain SGD without momentum: the step is lr * gradient, so its norm is at most lr * clip
    model = _model()
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    opt = torch.optim.SGD(model.parameters(), lr=1.0)

    def huge_loss(out, y):
        return 1e6 * F.cross_entropy(out, y)

    fit(model, _toy_batches(1), huge_loss, opt, iterations=1, clip_grad_norm=0.1, progress=False)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert (after - before).norm() == pytest.approx(0.1, rel=1e-4)
