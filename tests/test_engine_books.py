"""The engine keeps its books in one place (issue #26): a position read that
does not sync, a loader's epoch order keyed by its identity (not its
address), and errors that say whose fault they are and carry a callback's
own exception."""

import gc

import pytest
import torch

import ferrotorch as ft
from _mlp import mlp
from ferrotorch import Trainer
from ferrotorch.data import DataLoader
from ferrotorch.optim import Adam


def _batches(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(8, 4, generator=g), torch.randn(8, 3, generator=g)) for _ in range(n)]


# --- position: the counters without a read ----------------------------------------------------


def test_position_reads_the_counters_and_leaves_losses_pending():
    g = mlp(3)
    t = Trainer(g, Adam(g.parameters(), 0.01), loss_reads="batched", on_nonfinite="off", grad_accumulation=2)
    for x, y in _batches(5):
        t.step(x, y, lazy=True)
    e = t._engine
    assert e.pending_reads == 5
    # (step, micro, epoch, batch): two updates, one batch into the third window.
    assert e.position() == (2, 1, 0, 5)
    assert e.pending_reads == 5  # nothing was read
    st = e.state  # the full state reads every pending loss first
    assert e.pending_reads == 0
    assert (st["step"], st["micro"], st["epoch"], st["batch"]) == e.position()
    assert st["epoch_batches"] == 5


def test_position_follows_a_run_over_a_loader_and_the_epoch_end():
    g = mlp(4)
    t = Trainer(g, Adam(g.parameters(), 0.01), loss_reads="batched", on_nonfinite="off", grad_accumulation=3)
    x, y = torch.randn(40, 4), torch.randn(40, 3)
    loader = DataLoader((x, y), batch_size=8, shuffle=True, seed=1)
    ups, n, done = t._engine.run_loader(loader, 2)
    assert (n, done, ups) == (2, False, [])
    assert t._engine.position() == (0, 2, 0, 2)
    t._engine.run_loader(loader, 100)
    assert t._engine.position() == (1, 2, 0, 5)
    flushed, (num, _loss, nb) = t._engine.end_epoch()
    assert flushed is not None and flushed[0] == 2 and (num, nb) == (1, 5)
    assert t._engine.position() == (2, 0, 1, 0)


# --- a loader's identity is not its address ----------------------------------------------------


def test_a_new_loader_where_a_dropped_one_lived_trains_in_its_own_order():
    x, y = torch.randn(64, 4, generator=torch.Generator().manual_seed(7)), torch.randn(64, 3)

    def trainer():
        g = mlp(5)
        return Trainer(g, Adam(g.parameters(), 0.01), on_nonfinite="off")

    # Reference: the batches of both loaders' epoch 0, stepped by hand.
    first = list(DataLoader((x, y), batch_size=8, shuffle=True, seed=1).epoch(0))
    second = list(DataLoader((x, y), batch_size=8, shuffle=True, seed=2).epoch(0))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, second))
    ref = trainer()
    for xb, yb in first[:3] + second[3:]:
        ref.step(xb, yb)

    t = trainer()
    loader = DataLoader((x, y), batch_size=8, shuffle=True, seed=1)
    t._engine.run_loader(loader, 3)  # the engine now holds seed 1's epoch-0 order
    del loader
    gc.collect()  # the new loader may be allocated where this one lived
    fresh = DataLoader((x, y), batch_size=8, shuffle=True, seed=2)
    t._engine.run_loader(fresh, 100)  # epoch 0 from batch 3, in seed 2's order
    assert all(torch.equal(a, b) for a, b in zip(ref.model.parameters(), t.model.parameters()))


# --- errors say whose fault they are ------------------------------------------------------------


def test_core_errors_map_one_to_one_onto_the_python_classes():
    pairs = {
        "Value": ft.ConfigError,
        "Shape": ft.ShapeError,
        "DType": ft.DTypeError,
        "Graph": ft.GraphError,
        "Key": ft.TagError,
        "Torch": ft.TorchError,
        "External": ft.TorchError,  # a callback's error without its exception: the message
        "Checkpoint": ft.CheckpointError,
        "Io": ft.FileError,
        "Training": ft.TrainingError,
        "Device": ft.DeviceError,
        "OutOfRange": ft.OutOfRangeError,
        "Internal": ft.InternalError,
    }
    for variant, cls in pairs.items():
        with pytest.raises(ft.Error) as ei:
            ft._core._core_error_for_tests(variant, f"the {variant} message")
        assert type(ei.value) is cls, (variant, type(ei.value))
        assert str(ei.value) == f"the {variant} message"
    classes = [c for v, c in pairs.items() if v != "External"]
    assert len(set(classes)) == len(classes)  # one class per variant
    assert issubclass(ft.InternalError, RuntimeError)


class _Refuses(torch.nn.Module):
    """A torch model whose ``train(True)`` can be made to fail."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
        self.refuse = False

    def forward(self, x):
        return self.lin(x)

    def train(self, mode=True):
        if mode and self.refuse:
            raise KeyError("train(True) refused")
        return super().train(mode)


class _Mine(ValueError):
    pass


def test_a_callback_exception_travels_in_its_error_and_is_raised_as_itself():
    net = _Refuses()
    t = Trainer(net, torch.optim.SGD(net.parameters(), 0.1), loss="mse")
    raised = _Mine("from the evaluation")

    def evaluation():
        raise raised

    # The evaluation fails, then restoring the training mode calls back into
    # Python, which fails too: the evaluation's own exception comes out (a
    # thread-local stash of "the last callback exception" held the later one).
    net.refuse = True
    with pytest.raises(_Mine, match="from the evaluation") as ei:
        t._engine.eval_call(evaluation, True)
    assert ei.value is raised

    # A core error whose restore fails in Python: the core error comes out,
    # and the dropped callback exception does not linger for later errors.
    with pytest.raises(ft.ConfigError, match="the model takes one input"):
        t._engine.predict((torch.ones(2, 4), torch.ones(2, 4)), True)
    net.refuse = False
    with pytest.raises(ft.ShapeError):
        t._engine.eval_batch(torch.ones(2, 4), torch.ones(2, 5), True)
    later = _Mine("a later callback")

    def fails_later():
        raise later

    with pytest.raises(_Mine) as ei:
        t._engine.eval_call(fails_later, True)
    assert ei.value is later
    assert net.training


def test_a_loss_callable_exception_keeps_its_type_and_message_through_a_step():
    g = mlp(2)

    def loss(pred, target):
        raise _Mine("the loss refused")

    t = Trainer(g, Adam(g.parameters(), 0.01), loss=loss)
    x, y = _batches(1)[0]
    with pytest.raises(_Mine, match="the loss refused"):
        t.step(x, y)
    assert t.global_step == 0 and t.batch == 0
    # The next, unrelated failure is its own.
    with pytest.raises(ft.ShapeError):
        Trainer(g, Adam(g.parameters(), 0.01), loss="mse").step(x, torch.ones(8, 5))
