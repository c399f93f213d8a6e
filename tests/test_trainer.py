"""Trainer: the Rust step equals the same step written in PyTorch."""

import threading
import time

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import EarlyStop, FlowBuilder, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.nn import GELU, LayerNorm, Linear
from ferrotorch.optim import Adam


def _model():
    return FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(LayerNorm(8)).through(Linear(8, 3)).build()


def _ref_of(graph):
    ref = torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.GELU(), torch.nn.LayerNorm(8), torch.nn.Linear(8, 3)
    )
    with torch.no_grad():
        for a, b in zip(ref.parameters(), graph.parameters()):
            a.copy_(b)
    return ref


@pytest.mark.parametrize("loss", ["mse", "cross_entropy", "callable"])
@pytest.mark.parametrize("clip", [None, 0.1])
def test_step_matches_torch_loop(loss, clip):
    g = _model()
    ref = _ref_of(g)
    x = torch.randn(16, 4)
    y = torch.randint(0, 3, (16,)) if loss == "cross_entropy" else torch.randn(16, 3)
    loss_fn = (lambda p, t: ((p - t) ** 2).mean()) if loss == "callable" else loss
    tr = Trainer(g, Adam(g.parameters(), 0.01), loss=loss_fn, clip_grad_norm=clip)
    topt = torch.optim.Adam(ref.parameters(), lr=0.01)
    for _ in range(20):
        got = tr.step(x, y)
        topt.zero_grad()
        out = ref(x)
        lt = F.cross_entropy(out, y) if loss == "cross_entropy" else F.mse_loss(out, y)
        lt.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(ref.parameters(), clip)
        topt.step()
        assert got == pytest.approx(lt.item(), rel=1e-5, abs=1e-6)
    for a, b in zip(g.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    assert g.step_count() == 20


def test_fit_on_loader_learns_and_reports():
    torch.manual_seed(0)
    x = torch.randn(256, 4)
    y = x @ torch.randn(4, 3)
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01), loss="mse")
    seen = []
    hist = tr.fit(DataLoader((x, y), 32), epochs=15, report=lambda e, loss: seen.append((e, loss)))
    assert [e for e, _ in seen] == list(range(1, 16))
    assert hist.losses == [loss for _, loss in seen] and hist.steps == 15 * 8
    assert hist.losses[-1] < 0.2 * hist.losses[0]


def test_fit_epoch_equals_manual_steps_on_same_batches():
    x, y = torch.randn(50, 4), torch.randn(50, 3)
    dl = DataLoader((x, y), 16, seed=5)
    g1 = _model()
    g2 = _model()
    with torch.no_grad():
        for a, b in zip(g2.parameters(), g1.parameters()):
            a.copy_(b)
    t1 = Trainer(g1, Adam(g1.parameters(), 0.01))
    t2 = Trainer(g2, Adam(g2.parameters(), 0.01))
    hist = t1.fit(dl, epochs=2)
    manual = []
    for e in range(2):
        losses = [t2.step(xb, yb) for xb, yb in dl.epoch(e)]
        manual.append(sum(losses) / len(losses))
    assert hist.losses == pytest.approx(manual, rel=1e-6)
    for a, b in zip(g1.parameters(), g2.parameters()):
        assert torch.equal(a, b)


def test_fit_accepts_any_iterable_of_batches():
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01))
    ref = _ref_of(g)
    batches = [(torch.randn(8, 4), torch.randn(8, 3)) for _ in range(3)]
    hist = tr.fit(batches, epochs=2)
    assert hist.steps == 6
    topt = torch.optim.Adam(ref.parameters(), 0.01)
    ref_losses = []
    for x, y in batches * 2:  # a list is iterated afresh each epoch, in its order
        topt.zero_grad()
        loss = F.mse_loss(ref(x), y)
        loss.backward()
        topt.step()
        ref_losses.append(loss.item())
    assert hist.step_losses == pytest.approx(ref_losses, rel=1e-5)
    for a, b in zip(g.parameters(), ref.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_early_stop_from_report():
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01))

    def report(epoch, loss, trainer):
        assert trainer is tr
        if epoch == 2:
            raise EarlyStop()

    hist = tr.fit(DataLoader((torch.randn(20, 4), torch.randn(20, 3)), 5), epochs=10, report=report)
    assert hist.stopped_early and hist.epochs == 2


def test_predict_is_eval_no_grad():
    g = _model()
    tr = Trainer(g, Adam(g.parameters(), 0.01))
    out = tr.predict(torch.randn(5, 4))
    assert out.shape == (5, 3) and not out.requires_grad and g.training


def _step_seen_mid_run(batches):
    """Runs ``batches`` engine steps on a worker thread while this thread reads
    the step counter; True when it read one strictly between 0 and the end,
    which needs this thread to run Python while the worker is inside the one
    Rust call: with the GIL held throughout, it could only read 0 or the end."""
    g = FlowBuilder.from_(Linear(4, 8)).through(GELU()).through(Linear(8, 3)).build()
    tr = Trainer(g, Adam(g.parameters(), 1e-3))
    dl = DataLoader((torch.randn(batches, 4), torch.randn(batches, 3)), 1, shuffle=False)
    worker = threading.Thread(target=lambda: tr._engine.run_loader(dl, batches))
    worker.start()
    seen = set()
    while worker.is_alive():
        seen.add(tr._engine.position()[0])
        time.sleep(0.001)  # frees the GIL the worker needs to enter and leave the call
    worker.join()
    assert tr._engine.position()[0] == batches
    return any(0 < s < batches for s in seen)


def test_step_releases_gil():
    # No timing or tick count: only whether this thread ever ran mid-call. A round can miss
    # only when the OS gives this thread no time at all during the worker's whole run.
    assert any(_step_seen_mid_run(50) for _ in range(20))


def test_bad_trainer_input():
    g = _model()
    opt = Adam(g.parameters(), 0.01)
    with pytest.raises(ft.ConfigError, match="unknown loss 'hinge2'"):
        Trainer(g, opt, loss="hinge2")
    with pytest.raises(ft.InputTypeError, match="optimizer"):
        Trainer(g, object())  # torch.optim optimizers are accepted since #15
    with pytest.raises(ft.ConfigError, match="clip_grad_norm"):
        Trainer(g, opt, clip_grad_norm=-1.0)
    tr = Trainer(g, opt)
    with pytest.raises(ft.ShapeError, match=r"\[2, 3\]"):
        tr.step(torch.randn(2, 4), torch.randn(3, 3))
    with pytest.raises(ft.InputTypeError, match="y"):
        tr.step(torch.randn(2, 4), [1, 2])
    with pytest.raises(ft.ShapeError, match="node 'linear_1'"):
        tr.step(torch.randn(2, 5), torch.randn(2, 3))


def test_python_loss_error_propagates():
    g = _model()

    def bad_loss(p, t):
        raise ZeroDivisionError("user loss failed")

    tr = Trainer(g, Adam(g.parameters(), 0.01), loss=bad_loss)
    with pytest.raises(ZeroDivisionError, match="user loss failed"):
        tr.step(torch.randn(2, 4), torch.randn(2, 3))
