"""fit over a torch DataLoader resumes with the remainder of the interrupted
epoch, bit for bit, wherever the state was saved; and fit over another data
source after a partial epoch starts a new epoch (ferrotorch.data_position)."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Sampler, TensorDataset

import ferrotorch as ft

N, BATCH = 56, 8  # 7 batches per epoch: odd
EPOCHS = 2


def _net():
    torch.manual_seed(3)
    # Dropout draws from torch's global generator, as the unseeded shuffle does.
    return torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Dropout(0.2), torch.nn.Tanh(), torch.nn.Linear(16, 2)
    )


def _dataset():
    g = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(N, 4, generator=g), torch.randn(N, 2, generator=g))


def _loader(kind):
    ds = _dataset()
    if kind == "loader_generator":
        return DataLoader(ds, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(7))
    if kind == "sampler_generator":
        sampler = torch.utils.data.RandomSampler(ds, generator=torch.Generator().manual_seed(7))
        return DataLoader(ds, batch_size=BATCH, sampler=sampler)
    return DataLoader(ds, batch_size=BATCH, shuffle=True)  # torch's global generator


def _trainer(accumulation):
    net = _net()
    opt = ft.optim.Adam(net.parameters(), 1e-2, implementation="fused")
    return net, ft.Trainer(net, opt, loss=F.mse_loss, grad_accumulation=accumulation)


def _full(kind, accumulation):
    torch.manual_seed(11)
    net, t = _trainer(accumulation)
    t.fit(_loader(kind), epochs=EPOCHS)
    return net, t


BATCHES = EPOCHS * (N // BATCH)


@pytest.mark.parametrize("accumulation", [1, 2, 3])
@pytest.mark.parametrize("kind", ["loader_generator", "sampler_generator", "global"])
def test_resume_from_every_batch_is_bit_exact(kind, accumulation, tmp_path):
    """A state is saved after every optimizer step of the run (every batch
    with accumulation 1; every window's end otherwise, plus inside windows
    via the partial saves below); each is resumed in a fresh Trainer over a
    fresh loader and must end exactly where the uninterrupted run ends."""
    ref, tref = _full(kind, accumulation)
    updates = tref.global_step
    for k in range(1, updates):
        torch.manual_seed(11)
        net, t = _trainer(accumulation)
        d = tmp_path / f"{kind}-{accumulation}-{k}"
        t.fit(_loader(kind), epochs=EPOCHS, steps=k, checkpoint_dir=str(d), checkpoint_every=1)
        torch.manual_seed(999)  # the resumed process's own generator state is irrelevant
        net2, t2 = _trainer(accumulation)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a replayable loader resumes without a warning
            t2.fit(_loader(kind), epochs=EPOCHS, checkpoint_dir=str(d), resume=True)
        assert t2.global_step == updates, k
        for p, q in zip(net2.parameters(), ref.parameters()):
            assert torch.equal(p, q), (kind, accumulation, k)


@pytest.mark.parametrize("accumulation", [2, 3])
@pytest.mark.parametrize("kind", ["loader_generator", "global"])
def test_interrupt_at_every_batch_and_window_phase_is_bit_exact(kind, accumulation, tmp_path):
    """An interrupt (Ctrl-C at a step boundary) after every batch of the run,
    so every phase of every accumulation window: fit saves the state, and a
    fresh Trainer over a fresh loader resumes to the uninterrupted weights."""
    ref, _ = _full(kind, accumulation)
    for b in range(1, BATCHES):
        torch.manual_seed(11)
        _, t = _trainer(accumulation)
        d = tmp_path / f"{kind}-{accumulation}-{b}"
        h = t.fit(_Limited(_loader(kind), b), epochs=EPOCHS, checkpoint_dir=str(d))
        assert h.interrupted and t.epoch * (N // BATCH) + t.batch == b
        torch.manual_seed(999)
        net2, t2 = _trainer(accumulation)
        t2.fit(_loader(kind), epochs=EPOCHS, checkpoint_dir=str(d), resume=True)
        for p, q in zip(net2.parameters(), ref.parameters()):
            assert torch.equal(p, q), (kind, accumulation, b)


class _Limited(DataLoader):
    """The loader itself, interrupted (KeyboardInterrupt) when it is asked for
    the batch after the ``b``-th of the run: an interrupt at that step
    boundary, enumerated rather than timed."""

    def __init__(self, loader, b):
        self.__dict__.update(loader.__dict__)
        self._limit = b
        self._given = 0

    def __iter__(self):
        for batch in DataLoader.__iter__(self):
            if self._given >= self._limit:
                raise _Interrupt
            self._given += 1
            yield batch


class _Interrupt(KeyboardInterrupt):
    pass


def test_unreplayable_sampler_warns_once(tmp_path):
    class Reversed(Sampler):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n - 1, -1, -1))

        def __len__(self):
            return self.n

    ds = _dataset()
    net, t = _trainer(1)
    t.fit(
        DataLoader(ds, batch_size=BATCH, sampler=Reversed(N)),
        steps=3,
        checkpoint_dir=str(tmp_path),
        checkpoint_every=1,
    )
    net2, t2 = _trainer(1)
    with pytest.warns(RuntimeWarning, match="cannot be replayed") as rec:
        t2.fit(
            DataLoader(ds, batch_size=BATCH, sampler=Reversed(N)),
            epochs=2,
            checkpoint_dir=str(tmp_path),
            resume=True,
        )
    assert len([w for w in rec if "cannot be replayed" in str(w.message)]) == 1


def test_stateful_loader_resumes_from_its_own_state(tmp_path):
    calls = {}

    class Stateful(DataLoader):
        def state_dict(self):
            return {"position": "mine"}

        def load_state_dict(self, sd):
            calls["loaded"] = sd

    ds = _dataset()
    _, t = _trainer(1)
    t.fit(Stateful(ds, batch_size=BATCH), steps=3, checkpoint_dir=str(tmp_path), checkpoint_every=1)
    _, t2 = _trainer(1)
    t2.fit(Stateful(ds, batch_size=BATCH), epochs=1, checkpoint_dir=str(tmp_path), resume=True)
    assert calls["loaded"] == {"position": "mine"}


@pytest.mark.parametrize("same", [True, False])
def test_fit_over_another_source_after_a_partial_epoch_starts_a_new_epoch(same):
    a = DataLoader(_dataset(), batch_size=4)  # 14 batches
    b = a if same else DataLoader(_dataset(), batch_size=4)
    _, t = _trainer(1)
    t.fit(a, steps=2)
    assert (t.epoch, t.batch, t.global_step) == (0, 2, 2)
    h = t.fit(b, epochs=1)
    if same:  # the same loader: the rest of the interrupted epoch
        assert (t.epoch, t.global_step) == (1, 14) and h.steps == 12
    else:  # another loader: the partial epoch ends, b trains a whole epoch
        assert (t.epoch, t.global_step) == (2, 16) and h.steps == 14


def test_a_loaded_state_continues_over_any_source(tmp_path):
    _, t = _trainer(1)
    t.fit(DataLoader(_dataset(), batch_size=4), steps=2, checkpoint_dir=str(tmp_path), checkpoint_every=1)
    _, t2 = _trainer(1)
    t2.fit(DataLoader(_dataset(), batch_size=4), epochs=1, checkpoint_dir=str(tmp_path), resume=True)
    assert (t2.epoch, t2.global_step) == (1, 14)


def test_a_bad_data_position_in_a_file_is_a_checkpoint_error(tmp_path):
    _, t = _trainer(1)
    t.fit(_loader("global"), steps=2, checkpoint_dir=str(tmp_path), checkpoint_every=1)
    path = tmp_path / "last.pt"
    st = torch.load(path, weights_only=False)
    st["data"]["epoch_rng"] = {"epoch": 0, "global": torch.zeros(3), "generator": None}
    bad = tmp_path / "bad.pt"
    torch.save(st, bad)
    _, t2 = _trainer(1)
    with pytest.raises(ft.CheckpointError, match=r"data: epoch_rng\['global'\]"):
        t2.load_state(str(bad))
    assert t2.global_step == 0


@pytest.mark.parametrize("kind", ["loader_generator", "global"])
def test_a_later_fit_over_the_same_shuffling_loader_continues_its_epoch_exactly(kind):
    ref, _ = _full(kind, 1)
    torch.manual_seed(11)
    net, t = _trainer(1)
    loader = _loader(kind)
    t.fit(loader, steps=3)
    t.fit(loader, epochs=EPOCHS - t.epoch)
    for p, q in zip(net.parameters(), ref.parameters()):
        assert torch.equal(p, q)
