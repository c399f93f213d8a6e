"""Trainer's options and defaults have one source, the core's table
(`rust/train/options.rs::TRAINER_OPTIONS`): the Python signature carries it,
the engine's binding takes every option without a default of its own (the
stub says so), and the docstring names every option."""

import ast
import inspect
import pathlib

import pytest
import torch

import ferrotorch as ft
from ferrotorch import _core

TABLE = _core.trainer_options()
STUB = ast.parse(pathlib.Path(_core.__file__).with_name("_core.pyi").read_text())


def _model():
    return ft.nn.Linear(2, 1)


def test_python_signature_is_the_core_table():
    params = list(inspect.signature(ft.Trainer).parameters.values())
    assert [p.name for p in params[:2]] == ["model", "optimizer"]
    assert [(p.name, p.default) for p in params[2:]] == [(n, d) for n, d, _ in TABLE]


def test_engine_stub_has_no_defaults_of_its_own():
    engine = next(n for n in STUB.body if isinstance(n, ast.ClassDef) and n.name == "Engine")
    new = next(n for n in engine.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    assert new.args.defaults == [] and new.args.kw_defaults == []
    assert any(isinstance(n, ast.FunctionDef) and n.name == "trainer_options" for n in STUB.body)


def test_docstring_mentions_every_option_with_its_default():
    doc = ft.Trainer.__doc__
    for name, default, line in TABLE:
        assert f"``{name}={default!r}``: {line}" in doc, name


def test_grad_accumulation_is_checked_once_in_the_core():
    m = _model()
    opt = ft.optim.SGD(m.parameters(), 0.1)
    for bad in (0, -3):
        with pytest.raises(
            ft.ConfigError, match=f"Trainer: grad_accumulation must be an int >= 1, got {bad}$"
        ):
            ft.Trainer(m, opt, grad_accumulation=bad)
    with pytest.raises(
        ft.InputTypeError, match="argument 'grad_accumulation' must be an integer, got bool True"
    ):
        ft.Trainer(m, opt, grad_accumulation=True)


def test_schedule_unit_is_the_cores():
    m = _model()
    opt = ft.optim.SGD(m.parameters(), 0.1)
    with pytest.raises(ft.ConfigError, match="Trainer: schedule_unit must be 'step' or 'epoch', got 'batch'"):
        ft.Trainer(m, opt, schedule_unit="batch")
    assert ft.Trainer(m, opt, schedule_unit="epoch") is not None


def test_loss_policy_is_the_cores():
    m = _model()
    opt = ft.optim.SGD(m.parameters(), 0.1)
    with pytest.raises(ft.ConfigError, match=r"Trainer: the loss ctc_loss takes \(log_probs, targets"):
        ft.Trainer(m, opt, loss=ft.losses.CTCLoss())
    with pytest.raises(ft.ConfigError, match="has reduction='none'; a training step needs a scalar loss"):
        ft.Trainer(m, opt, loss=ft.losses.MSELoss(reduction="none"))


def test_plateau_schedulers_are_recognised_by_type():
    """fit steps a ReduceLROnPlateau (torch's or ferrotorch's, or a subclass
    of either whatever its name) with the epoch's loss."""

    class Plateau(torch.optim.lr_scheduler.ReduceLROnPlateau):
        def __init__(self, opt):
            super().__init__(opt)
            self.seen = []

        def step(self, metrics):  # noqa: D102 - records what fit passes
            self.seen.append(metrics)

    torch.manual_seed(0)
    m = _model()
    opt = ft.optim.SGD(m.parameters(), 0.1)
    s = Plateau(opt)
    x, y = torch.randn(8, 2), torch.randn(8, 1)
    ft.Trainer(m, opt, scheduler=s).fit(ft.data.DataLoader((x, y), batch_size=4), epochs=2)
    assert len(s.seen) == 2 and all(isinstance(v, float) for v in s.seen)
