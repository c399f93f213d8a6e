"""GradScaler's defaults have one source, the core's table
(`ScalerConfig::DEFAULTS` in `rust/amp/scaler.rs`, read through
`_core.grad_scaler_defaults`): the Python signature, the extension's
constructor, the stub and torch.amp.GradScaler must all agree with it."""

import ast
import inspect
import warnings
from pathlib import Path

import pytest
import torch

import ferrotorch as ft
from ferrotorch import _core

STUB = Path(ft.__file__).with_name("_core.pyi")
# ferrotorch's scale lives where the first scaled tensor is; torch's defaults to "cuda".
NOT_TORCHS = {"device"}


def _signature_defaults(cls):
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()}


def _stub_defaults():
    tree = ast.parse(STUB.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "GradScaler")
    new = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__new__")
    args = new.args.args[1:]  # cls
    defaults = dict(zip([a.arg for a in args[len(args) - len(new.args.defaults) :]], new.args.defaults))
    return {a.arg: ast.literal_eval(defaults[a.arg]) for a in args}


def test_the_core_table_names_every_constructor_argument_in_order():
    table = _core.grad_scaler_defaults()
    assert list(table) == [
        "init_scale",
        "growth_factor",
        "backoff_factor",
        "growth_interval",
        "enabled",
        "device",
    ]
    # pyo3's own text signature of the extension constructor: the same names in the same order.
    assert _core.GradScaler.__text_signature__.startswith("(init_scale=")
    sig = inspect.signature(_core.GradScaler)
    assert list(sig.parameters) == list(table)


def test_python_signature_is_the_core_table():
    assert ft.GradScaler is ft.amp.GradScaler
    assert _signature_defaults(ft.GradScaler) == _core.grad_scaler_defaults()


def test_stub_is_the_core_table():
    assert _stub_defaults() == _core.grad_scaler_defaults()


def test_core_table_is_torchs_where_torch_has_the_argument():
    theirs = inspect.signature(torch.amp.GradScaler).parameters
    table = _core.grad_scaler_defaults()
    shared = {k: v for k, v in table.items() if k in theirs and k not in NOT_TORCHS}
    assert set(shared) == {"init_scale", "growth_factor", "backoff_factor", "growth_interval", "enabled"}
    for key, value in shared.items():
        assert value == theirs[key].default and type(value) is type(theirs[key].default), key


def test_constructed_defaults_are_the_table_and_torchs_state():
    table = _core.grad_scaler_defaults()
    ours = ft.GradScaler()
    assert ours.is_enabled() is table["enabled"]
    assert ours.get_scale() == table["init_scale"]
    assert (ours.get_growth_factor(), ours.get_backoff_factor(), ours.get_growth_interval()) == (
        table["growth_factor"],
        table["backoff_factor"],
        table["growth_interval"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torch.amp.GradScaler("cpu")
    p = torch.nn.Parameter(torch.ones(2))
    for s in (ours, theirs):
        s.scale(p.sum()).backward()
    sd = ours.state_dict()
    assert sd == {k: v for k, v in theirs.state_dict().items()}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(init_scale=0.0), "GradScaler: init_scale must be finite and > 0, got 0"),
        (dict(init_scale=float("inf")), "GradScaler: init_scale must be finite and > 0, got inf"),
        (dict(growth_factor=1.0), r"GradScaler: growth_factor must be > 1.0, got 1"),
        (dict(growth_factor=float("nan")), r"GradScaler: growth_factor must be > 1.0, got NaN"),
        (dict(backoff_factor=1.0), r"GradScaler: backoff_factor must be in \(0, 1\), got 1"),
        (dict(growth_interval=0), r"GradScaler: growth_interval must be >= 1, got 0"),
    ],
)
def test_each_option_has_one_rule_and_one_message(kwargs, message):
    with pytest.raises(ft.ConfigError, match=message):
        ft.GradScaler(**kwargs)
    # The same rule on load, naming the state dict's key.
    good = ft.GradScaler(init_scale=4.0, device="cpu")
    sd = dict(good.state_dict())
    key, value = next(iter(kwargs.items()))
    sd["scale" if key == "init_scale" else key] = value
    with pytest.raises(
        ft.ConfigError,
        match=message.replace("GradScaler:", r"GradScaler\.load_state_dict:").replace("init_scale", "scale"),
    ):
        good.load_state_dict(sd)
    assert good.get_scale() == 4.0  # nothing applied


def test_disabled_scaler_checks_nothing_as_torchs():
    assert not ft.GradScaler(growth_factor=0.5, enabled=False).is_enabled()


@pytest.mark.parametrize("bad", [torch.float32, torch.float64, "int8"])
def test_the_amp_dtype_is_checked_once_with_one_message(bad):
    kind = ft.DTypeError if bad == "int8" else ft.ConfigError
    for call in (
        lambda: ft.autocast(bad, device_type="cpu"),
        lambda: _core.amp_needs_scaler(bad, "autocast"),
    ):
        with pytest.raises(kind, match="autocast"):
            call()
    assert _core.amp_needs_scaler(torch.float16) and not _core.amp_needs_scaler(torch.bfloat16)
    assert _core.amp_needs_scaler("half") and not _core.amp_needs_scaler("bf16")
