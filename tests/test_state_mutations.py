"""Validate-then-apply covers every part of a training state: each leaf of a
saved state, mutated in turn (wrong type, wrong shape, None, missing), is a
CheckpointError naming the file and the part, and changes nothing."""

import copy

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

import ferrotorch as ft
from test_resume_torch_loader import _Limited

# Mutations that leave a valid state, with the reason (everything else must be refused).
VALID = {
    # CUDA generator states: None when CUDA is absent (as saved here), an optional key.
    ("rng_cuda",): {"none", "missing"},
    # A parameter without a gradient inside a window is a valid state.
    ("grads", "*"): {"none"},
    # No stateful loader and no shuffle generator: None is their value; a
    # stateful loader's own state is opaque to ferrotorch (its load_state_dict checks it).
    ("data", "loader"): {"none", "wrong_type"},
    ("data", "generator_now"): {"none"},
    ("data", "epoch_rng", "generator"): {"none"},
}


def _valid(path, name):
    for key, names in VALID.items():
        if name in names and len(key) == len(path) and all(k in ("*", p) for k, p in zip(key, path)):
            return True
    return False


def _trainer(seed):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    opt = ft.optim.Adam(net.parameters(), 1e-2, implementation="fused")
    sched = torch.optim.lr_scheduler.StepLR(opt, 1, 0.5)
    return ft.Trainer(net, opt, loss=F.mse_loss, scheduler=sched, grad_accumulation=2, scaler=ft.GradScaler())


def _loader():
    g = torch.Generator().manual_seed(0)
    ds = TensorDataset(torch.randn(40, 4, generator=g), torch.randn(40, 2, generator=g))
    return DataLoader(ds, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(1))


def _leaves(obj, path=()):
    if isinstance(obj, dict) and obj:
        for k, v in obj.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(obj, (list, tuple)) and obj:
        for i, v in enumerate(obj):
            yield from _leaves(v, path + (i,))
    else:
        yield path


def _set(st, path, value, delete=False):
    obj = st
    for k in path[:-1]:
        obj = obj[k]
    if isinstance(obj, tuple):
        raise TypeError("tuple")
    if delete:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


def _mutations(st, path):
    leaf = st
    for k in path:
        leaf = leaf[k]
    yield "none", lambda s: _set(s, path, None)
    yield "wrong_type", lambda s: _set(s, path, "not a value")
    yield "missing", lambda s: _set(s, path, None, delete=True)
    if isinstance(leaf, torch.Tensor) and leaf.dim() > 0:
        yield "wrong_shape", lambda s: _set(s, path, torch.zeros(7, 3, dtype=leaf.dtype))


def _fingerprint(t):
    return (
        {k: v.clone() for k, v in t.model.state_dict().items()},
        copy.deepcopy(t.optimizer.state_dict()),
        copy.deepcopy(t.scheduler.state_dict()),
        t.scaler.state_dict(),
        dict(t._engine.state),
        [None if p.grad is None else p.grad.clone() for p in t.model.parameters()],
        torch.get_rng_state(),
    )


def _equal(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_equal, a, b))
    return a == b


def test_every_mutated_leaf_is_refused_and_changes_nothing(tmp_path):
    t = _trainer(0)
    d = str(tmp_path / "run")
    assert t.fit(_Limited(_loader(), 3), epochs=2, checkpoint_dir=d).interrupted  # inside a window
    saved = torch.load(f"{d}/last.pt", weights_only=False)
    assert saved["grads"] is not None and saved["engine"]["micro"] == 1
    target = _trainer(5)
    target.fit(_loader(), steps=1)  # state of its own to keep
    before = _fingerprint(target)
    accepted, checked = [], 0
    for path in _leaves(saved):
        if path == ("format",):
            continue
        for name, mutate in _mutations(saved, path):
            st = copy.deepcopy(saved)
            try:
                mutate(st)
            except (TypeError, IndexError):
                continue
            f = tmp_path / "bad.pt"
            torch.save(st, f)
            checked += 1
            try:
                target.load_state(str(f))
            except ft.CheckpointError as e:
                assert str(f) in str(e), (path, name, str(e))
                assert f"': {path[0]}" in str(e) or f": {path[0]}:" in str(e), (path, name, e)
            else:
                accepted.append((path, name))
                target = _trainer(5)  # loaded: start the next mutation from a fresh target
                target.fit(_loader(), steps=1)
                continue
            assert _equal(_fingerprint(target), before), (path, name)
    assert checked > 100
    wrongly_accepted = sorted((p, n) for p, n in accepted if not _valid(p, n))
    assert wrongly_accepted == [], "mutations accepted as valid states"
