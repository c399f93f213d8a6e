"""Each loss's arguments and defaults have one source, the core's table
(`rust/loss/table.rs`): `ferrotorch.losses`' functions and classes must cover
it exactly, their signatures (and the stub's) must carry its defaults, and
those must be torch's where torch has the same argument."""

import ast
import inspect
import pathlib
import re

import pytest
import torch
import torch.nn.functional as F

import ferrotorch as ft
from ferrotorch import _core
from ferrotorch import losses as L

TABLE = {f: (c, inputs, defaults) for f, c, inputs, defaults in _core.loss_table()}
STUB = ast.parse(pathlib.Path(_core.__file__).with_name("_core.pyi").read_text())

# torch.nn.functional's name where it differs from ours (focal: not in torch).
TORCH_FN = {
    "cross_entropy_loss": "cross_entropy",
    "cross_entropy_sparse": "cross_entropy",
    "bce_loss": "binary_cross_entropy",
    "bce_with_logits_loss": "binary_cross_entropy_with_logits",
    "kl_div_loss": "kl_div",
}
# Where ferrotorch keeps floDl's default on purpose (documented in the docstring).
FLODL = {("kl_div_loss", "reduction"), ("KLDivLoss", "reduction")}


def _defaults(sig):
    return {k: p.default for k, p in sig.parameters.items()}


def _agrees(ours, core):
    """pyo3 writes a negative default (ignore_index=-100) as `...`."""
    return ours == core or (ours is ... and isinstance(core, int) and core < 0)


def _stub_defaults(name, in_class=False):
    for node in STUB.body:
        if in_class and isinstance(node, ast.ClassDef) and node.name == name:
            fn = next(n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
            break
        if not in_class and isinstance(node, ast.FunctionDef) and node.name == name:
            fn = node
            break
    else:
        raise AssertionError(f"{name} is not in _core.pyi")
    args = [a.arg for a in fn.args.args if a.arg != "cls"]
    values = [ast.literal_eval(d) for d in fn.args.defaults]
    return args, dict(zip(args[len(args) - len(values) :], values))


def test_the_table_covers_every_loss_once():
    assert len(TABLE) == 17
    for fn, (cls, _, _) in TABLE.items():
        assert getattr(L, fn) is getattr(_core, fn) and fn in L.__all__
        assert getattr(L, cls)._core_cls is getattr(_core, cls) and cls in L.__all__
    assert set(L.LOSS_NAMES) - {"mae"} <= {f.removesuffix("_loss") for f in TABLE}


@pytest.mark.parametrize("fn", sorted(TABLE))
def test_function_signature_is_the_table(fn):
    _, inputs, core = TABLE[fn]
    sig = inspect.signature(getattr(L, fn))
    assert list(sig.parameters) == [*inputs, *core]
    ours = _defaults(sig)
    for k, v in core.items():
        assert _agrees(ours[k], v), (fn, k, ours[k], v)


@pytest.mark.parametrize("fn", sorted(TABLE))
def test_class_signature_and_constructed_defaults_are_the_table(fn):
    cls, _, core = TABLE[fn]
    assert _defaults(inspect.signature(getattr(L, cls))) == core
    # The built loss holds them: its repr prints every option.
    r = repr(getattr(L, cls)())
    for k, v in core.items():
        got = re.search(rf"\b{k}=([^,)]+)", r).group(1)
        if isinstance(v, (str, bool)) or v is None:
            assert got == repr(v), (cls, k, r)
        else:
            assert float(got) == v, (cls, k, r)


@pytest.mark.parametrize("fn", sorted(TABLE))
def test_stub_agrees_with_the_table(fn):
    cls, inputs, core = TABLE[fn]
    args, stub = _stub_defaults(fn)
    assert args == [*inputs, *core]
    assert all(_agrees(stub[k], v) for k, v in core.items()), (fn, stub, core)
    args, stub = _stub_defaults(cls, in_class=True)
    assert args == list(core)
    assert all(_agrees(stub[k], v) for k, v in core.items()), (cls, stub, core)


@pytest.mark.parametrize("fn", sorted(set(TABLE) - {"focal_loss"}))
def test_table_defaults_are_torchs(fn):
    cls, _, core = TABLE[fn]
    theirs_fn = _defaults(inspect.signature(getattr(F, TORCH_FN.get(fn, fn))))
    checked = 0
    for name, theirs in ((fn, theirs_fn), (cls, _torch_class_defaults(cls))):
        for k, v in core.items():
            if k in theirs and (name, k) not in FLODL:
                assert v == theirs[k], (name, k, v, theirs[k])
                checked += 1
    assert checked >= 1, fn


def _torch_class_defaults(cls):
    t = getattr(torch.nn, cls, None)
    return _defaults(inspect.signature(t)) if t is not None else {}


def test_reduction_is_checked_once_with_one_message():
    a, b = torch.zeros(3), torch.zeros(3)
    msg = r"mse_loss: reduction must be 'mean', 'sum' or 'none', got "
    with pytest.raises(ft.ConfigError, match=msg + "'avg'"):
        L.mse_loss(a, b, reduction="avg")
    with pytest.raises(ft.ConfigError, match=msg + "'batchmean'"):
        L.MSELoss(reduction="batchmean")
    with pytest.raises(
        ft.ConfigError, match=r"kl_div_loss: reduction must be 'mean', 'sum', 'none' or 'batchmean'"
    ):
        L.KLDivLoss(reduction="avg")
