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
NOT_HYPER = {"params", "implementation"}


def _classes():
    return {c._algorithm: c for c in fo.Optimizer.__subclasses__() if c._algorithm}


def _signature_defaults(cls):
    params = inspect.signature(cls).parameters
    return {k: p.default for k, p in params.items() if k not in NOT_HYPER}


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
