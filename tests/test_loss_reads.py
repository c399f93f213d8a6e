"""Batched loss reads (``Trainer(loss_reads=...)``): each step's loss stays on
the device and the engine reads pending losses in one transfer when a number
is needed. On CUDA that removes a host sync per step; on the CPU the same
bookkeeping runs with ``loss_reads="batched"``, and every figure (losses,
window means, epoch losses, skipped counts, history, resume) must equal the
per-step reads exactly.
"""

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

import ferrotorch as ft
from _mlp import mlp
from ferrotorch import GradScaler, Trainer
from ferrotorch.data import DataLoader
from ferrotorch.optim import Adam

# ``Tensor.item()`` and every other host read of a tensor value.
READ_OP = "aten::_local_scalar_dense"


def _batches(n, seed=1, nan_at=()):
    g = torch.Generator().manual_seed(seed)
    out = [(torch.randn(8, 4, generator=g), torch.randn(8, 3, generator=g)) for _ in range(n)]
    for i in nan_at:
        out[i][0][0, 0] = float("nan")
    return out


def _pair(seed=3, **kw):
    """Per-step and batched trainers on identical fresh models."""
    out = []
    for reads in ("step", "batched"):
        g = mlp(seed)
        out.append(Trainer(g, Adam(g.parameters(), 0.01), loss_reads=reads, **kw))
    return out


def _same_params(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.model.parameters(), b.model.parameters()))


def _inside_a_kernel(e):
    """Reads made by an ATen kernel itself (the CPU fused optimizers read
    their CPU step counters; on CUDA those counters live on the device)."""
    p = e.cpu_parent
    while p is not None:
        if p.name.startswith("aten::_fused_"):
            return True
        p = p.cpu_parent
    return False


def _reads(fn):
    """How many host reads of tensor values ``fn`` makes (the engine's and
    the caller's, not a kernel's own)."""
    with profile(activities=[ProfilerActivity.CPU], acc_events=True) as prof:
        fn()
    return sum(1 for e in prof.events() if e.name == READ_OP and not _inside_a_kernel(e))


def test_fit_books_the_same_history_and_counters_as_per_step_reads():
    step, batched = _pair(on_nonfinite="off", grad_accumulation=3)
    assert not step._engine.batched_reads and batched._engine.batched_reads
    data = _batches(20)  # 20 batches per epoch: the last window is partial
    seen = [], []
    hs = step.fit(data, epochs=3, log_every=2, report=lambda k, loss: seen[0].append((k, loss)))
    hb = batched.fit(data, epochs=3, log_every=2, report=lambda k, loss: seen[1].append((k, loss)))
    assert seen[0] == seen[1] and len(seen[0]) == 10
    assert hs.step_losses == hb.step_losses and len(hs.step_losses) == 21
    assert hs.losses == hb.losses and len(hs.losses) == 3
    assert step._engine.state == batched._engine.state
    assert _same_params(step, batched)


def test_fit_over_a_loader_with_log_points_reports_the_same_losses():
    seen = {"step": [], "batched": []}

    def record(out):
        return lambda k, loss: out.append((k, loss))

    trainers = _pair(on_nonfinite="off")
    x, y = torch.randn(96, 4, generator=torch.Generator().manual_seed(5)), torch.randn(96, 3)
    for t, key in zip(trainers, seen):
        loader = DataLoader((x, y), batch_size=8, shuffle=True, seed=1)
        t.fit(loader, epochs=2, log_every=5, report=record(seen[key]))
    assert seen["step"] == seen["batched"] and [k for k, _ in seen["step"]] == [5, 10, 15, 20]
    assert _same_params(*trainers)


def test_lazy_steps_read_nothing_until_a_number_is_asked_for():
    step, batched = _pair(on_nonfinite="off")
    first, *data = _batches(13)
    for t in (step, batched):  # the optimizer's one-time state set-up reads
        t.step(*first)
    lazy = []
    n_step = _reads(lambda: [step.step(x, y) for x, y in data])
    n_lazy = _reads(lambda: lazy.extend(batched.step(x, y, lazy=True) for x, y in data))
    assert n_step == len(data)  # one read per step
    assert n_lazy == 0
    assert all(isinstance(t, torch.Tensor) and t.dim() == 0 for t in lazy)
    assert step._engine.state == batched._engine.state  # read on demand
    # The lazy tensors hold the losses the per-step trainer read.
    fresh = _pair(on_nonfinite="off")[0]
    fresh.step(*first)
    assert [fresh.step(x, y) for x, y in data] == [t.item() for t in lazy]


def test_a_float_step_reads_pending_losses_and_returns_its_own():
    step, batched = _pair(on_nonfinite="off")
    data = _batches(6)
    for x, y in data[:4]:
        assert step.step(x, y) == batched.step(x, y)
    for x, y in data[4:]:
        step.step(x, y)
        batched.step(x, y, lazy=True)
    x, y = data[0]
    assert step.step(x, y) == batched.step(x, y)
    assert step._engine.state == batched._engine.state


def test_graph_mode_skips_on_the_device_and_counts_on_read():
    data = _batches(12, nan_at=(6,))
    step, batched = _pair(on_nonfinite="skip", cuda_graph="_emulate")
    for x, y in data:
        a = step.step(x, y)
        b = batched.step(x, y, lazy=True)
        assert _same_params(step, batched)
    assert a == b.item()
    assert step.skipped_steps == batched.skipped_steps == 1
    assert step._engine.state == batched._engine.state


def test_a_grad_scaler_lets_eager_steps_batch_with_the_default_raise():
    models = [mlp(6), mlp(6)]
    trainers = [
        Trainer(m, Adam(m.parameters(), 0.01), scaler=GradScaler(init_scale=64.0), loss_reads=r)
        for m, r in zip(models, ("step", "batched"))
    ]
    data = _batches(10, nan_at=(4,))
    for x, y in data:
        assert trainers[0].step(x, y) == trainers[1].step(x, y) or x.isnan().any()
    assert _same_params(*trainers)
    assert trainers[0]._engine.state == trainers[1]._engine.state


def test_resume_mid_window_from_a_batched_run_is_exact(tmp_path):
    data = _batches(10)
    ref, batched = _pair(on_nonfinite="off", grad_accumulation=4)
    for x, y in data:
        ref.step(x, y)
    for x, y in data[:6]:
        batched.step(x, y, lazy=True)
    path = str(tmp_path / "mid.ftstate")
    batched.save_state(path)  # reads the pending losses first
    g = mlp(0)
    resumed = Trainer(
        g, Adam(g.parameters(), 0.01), loss_reads="batched", on_nonfinite="off", grad_accumulation=4
    )
    resumed.load_state(path)
    for x, y in data[6:]:
        resumed.step(x, y, lazy=True)
    assert resumed._engine.state == ref._engine.state
    assert _same_params(ref, resumed)


def test_a_long_lazy_run_stays_bounded_and_exact():
    step, batched = _pair(on_nonfinite="off")
    data = _batches(4)
    for i in range(1100):  # the ledger reads itself at 1024 pending entries
        x, y = data[i % 4]
        expected = step.step(x, y)
        if i < 1023:
            batched.step(x, y, lazy=True)
        else:  # float steps from the one that fills the ledger on
            assert batched.step(x, y) == expected, f"step {i}"
    assert step._engine.state == batched._engine.state


def test_batched_where_a_step_must_read_is_a_config_error_naming_why():
    g = mlp(1)
    with pytest.raises(ft.ConfigError, match="on_nonfinite='raise'"):
        Trainer(g, Adam(g.parameters(), 0.01), loss_reads="batched")
    with pytest.raises(ft.ConfigError, match="on_nonfinite='skip' decides on the host in eager mode"):
        Trainer(g, Adam(g.parameters(), 0.01), loss_reads="batched", on_nonfinite="skip")
    with pytest.raises(ft.ConfigError, match="loss_reads must be 'auto', 'step' or 'batched', got 'later'"):
        Trainer(g, Adam(g.parameters(), 0.01), loss_reads="later")
    # "auto" on the CPU reads per step (a read costs nothing there).
    assert not Trainer(g, Adam(g.parameters(), 0.01), on_nonfinite="off")._engine.batched_reads


def test_lazy_needs_the_x_y_form():
    g = mlp(1)
    t = Trainer(g, Adam(g.parameters(), 0.01))
    with pytest.raises(ft.ConfigError, match="lazy=True"):
        t.step(lambda: g(torch.randn(2, 4)).sum(), lazy=True)
