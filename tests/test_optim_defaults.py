"""Each optimizer's names and defaults have one source, the Rust registry
(`rust/optim/registry.rs`): `ferrotorch.optim`'s classes must cover it
exactly, their signatures must carry its defaults, and those must be torch's."""

import inspect

import pytest
import torch

import ferrotorch as ft
from ferrotorch import _core
from ferrotorch import optim as fo

# Keys the class itself fixes rather than the caller (Adam vs AdamW).
FIXED = {"adam": {"decoupled_weight_decay"}, "adamw": {"decoupled_weight_decay"}}
NOT_HYPER = {"params", "implementation", *fo.TORCH_PATH_KEYS}


def _classes():
    return {c._algorithm: c for c in fo.Optimizer.__subclasses__() if c._algorithm}


def _signature_defaults(cls):
    params = inspect.signature(cls).parameters
    fixed = FIXED.get(cls._algorithm, ())
    return {k: p.default for k, p in params.items() if k not in NOT_HYPER and k not in fixed}


def test_python_classes_cover_the_core_registry_exactly():
    assert sorted(_classes()) == sorted(_core.optimizer_names())
    for name, cls in _classes().items():
        assert name in fo.__all__ or cls.__name__ in fo.__all__


@pytest.mark.parametrize("name", _core.optimizer_names())
def test_signature_defaults_are_the_core_defaults(name):
    core = _core.optimizer_defaults(name)
    for key in FIXED.get(name, ()):
        core.pop(key)
    assert _signature_defaults(_classes()[name]) == core


@pytest.mark.parametrize("name", _core.optimizer_names())
def test_constructed_defaults_reach_the_core_unchanged(name):
    p = torch.nn.Parameter(torch.zeros(3))
    opt = _classes()[name]([p])
    assert opt.group_hyper(0) == _core.optimizer_defaults(name)


@pytest.mark.parametrize("name", [n for n in _core.optimizer_names() if n != "lamb"])
def test_core_defaults_are_torchs(name):
    torch_cls = {c.__name__.lower(): c for c in vars(torch.optim).values() if isinstance(c, type)}[name]
    theirs = inspect.signature(torch_cls).parameters
    shared = {k: v for k, v in _core.optimizer_defaults(name).items() if k in theirs}
    assert len(shared) >= 3, (name, shared)
    for key, value in shared.items():
        want = theirs[key].default
        assert value == (tuple(want) if isinstance(want, tuple) else want), (name, key, value, want)


def test_group_builder_defaults_come_from_the_core():
    assert inspect.signature(fo.SGD.with_groups).parameters["momentum"].default == 0.0
    wd = inspect.signature(fo.AdamW.with_groups).parameters["weight_decay"].default
    assert wd == _core.optimizer_defaults("adamw")["weight_decay"]
    p = torch.nn.Parameter(torch.zeros(3))
    # No lr anywhere: the class default (RMSprop's is 1e-2), not a shared constant.
    opt = fo.RMSprop.with_groups().group([p]).build()
    assert opt.lr == _core.optimizer_defaults("rmsprop")["lr"] == 1e-2


def test_by_name_builds_every_registered_optimizer():
    p = torch.nn.Parameter(torch.zeros(3))
    for name in _core.optimizer_names():
        opt = fo.by_name(name.upper(), [p], 0.5)
        assert type(opt) is _classes()[name] and opt.lr == 0.5
    with pytest.raises(ft.ConfigError, match=r"unknown optimizer 'adadelta'; valid names are \[.*'lamb'"):
        fo.by_name("adadelta", [p], 0.1)
    with pytest.raises(ft.ConfigError, match=r"unknown optimizer 'adadelta'; valid names are \[.*\"lamb\""):
        _core.optimizer_defaults("adadelta")


TORCH_CLASSES = {c.__name__.lower(): c for c in vars(torch.optim).values() if isinstance(c, type)}


@pytest.mark.parametrize("name", [n for n in _core.optimizer_names() if n != "lamb"])
def test_signature_is_torchs(name):
    """Every argument of torch's constructor, in torch's order and kind
    (positional or keyword-only), with torch's default; ferrotorch adds only
    the keyword-only `implementation` at the end."""
    theirs = list(inspect.signature(TORCH_CLASSES[name]).parameters.values())
    ours = list(inspect.signature(_classes()[name]).parameters.values())
    assert ours[-1].name == "implementation" and ours[-1].kind is inspect.Parameter.KEYWORD_ONLY
    assert [(p.name, p.kind) for p in ours[:-1]] == [(p.name, p.kind) for p in theirs]
    for mine, t in zip(ours[1:], theirs[1:]):
        want = tuple(t.default) if isinstance(t.default, tuple) else t.default
        assert mine.default == want, (name, mine.name, mine.default, t.default)


@pytest.mark.parametrize("name", [n for n in _core.optimizer_names() if n != "lamb"])
def test_torch_positional_call_equals_torch(name):
    """Every positional hyperparameter given in torch's order reaches the
    update: five steps equal torch's over the same positional call."""
    theirs = [p for p in inspect.signature(TORCH_CLASSES[name]).parameters.values()][1:]
    pos = [p for p in theirs if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    # A non-default value for every numeric positional (booleans stay off; path keys stay None).
    values = []
    for p in pos:
        d = p.default
        if isinstance(d, bool) or d is None:
            values.append(d)
        elif isinstance(d, tuple):
            values.append((0.8, 0.95))
        elif p.name == "lr":
            values.append(0.05)
        elif p.name in ("momentum", "dampening"):
            values.append(0.5)
        else:
            values.append(float(d) * 0.5 + 0.01)
    torch.manual_seed(0)
    w0 = torch.randn(4, 3)
    a = torch.nn.Parameter(w0.clone())
    b = torch.nn.Parameter(w0.clone())
    mine = _classes()[name]([a], *values)
    ref = TORCH_CLASSES[name]([b], *values)
    for i in range(5):
        g = torch.randn(4, 3, generator=torch.Generator().manual_seed(i))
        a.grad, b.grad = g.clone(), g.clone()
        mine.step()
        ref.step()
    torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-6, atol=1e-7)


def test_flodl_adamw_positional_weight_decay():
    p = torch.nn.Parameter(torch.zeros(3))
    assert fo.AdamW([p], 1e-2, 0.1).param_groups[0]["weight_decay"] == 0.1
    assert fo.AdamW([p], 1e-2, 0.1).param_groups[0]["betas"] == (0.9, 0.999)
    g = fo.AdamW([p], 1e-2, (0.8, 0.9), 1e-6, 0.05).param_groups[0]
    assert (g["betas"], g["eps"], g["weight_decay"]) == ((0.8, 0.9), 1e-6, 0.05)
    with pytest.raises(ft.ConfigError, match="floDl's weight_decay"):
        fo.AdamW([p], 1e-2, 0.1, weight_decay=0.2)


def test_torch_path_keywords():
    p = torch.nn.Parameter(torch.zeros(3))
    assert fo.Adam([p], fused=True).implementation == "fused"
    assert fo.Adam([p], foreach=True).implementation == "foreach"
    assert fo.SGD([p], 0.1, foreach=False).implementation == fo.SGD([p], 0.1).implementation
    with pytest.raises(ft.ConfigError, match="differentiable=True is not supported"):
        fo.Adam([p], differentiable=True)
    with pytest.raises(ft.ConfigError, match="contradicts implementation='reference'"):
        fo.Adam([p], fused=True, implementation="reference")
    # torch's Adam(decoupled_weight_decay=True) is AdamW, as in torch.
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    mine, ref = (
        fo.Adam([a], 0.1, weight_decay=0.1, decoupled_weight_decay=True),
        torch.optim.AdamW([b], 0.1, weight_decay=0.1),
    )
    a.grad, b.grad = torch.ones(3), torch.ones(3)
    mine.step()
    ref.step()
    torch.testing.assert_close(a.detach(), b.detach())
