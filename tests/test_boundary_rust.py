"""The binding boundary in Rust (rust/python/boundary.rs, rust/python/args.rs):
for a sample of every family, a wrong type is an InputTypeError naming the
argument, a negative count a ConfigError naming the argument and the value,
and a panic an InternalError; the classes users build are plain classes
(no proxies), so type(), isinstance and subclassing mean what they say."""

import copy
import pickle

import pytest
import torch

import ferrotorch as ft
from ferrotorch import _core


def _params():
    p = torch.nn.Parameter(torch.randn(3, 2))
    p.grad = torch.ones(3, 2)
    return [p]


def _loader():
    return ft.data.DataLoader([torch.ones(4, 2), torch.ones(4, 2)], 2)


WRONG_TYPE = {
    "layer": (lambda: ft.nn.Linear("a", 3), "Linear()", "in_features", "'a'"),
    "builtin": (lambda: ft.SoftmaxRouter("a", 2), "SoftmaxRouter()", "dim", "'a'"),
    "loss-class": (
        lambda: ft.losses.CrossEntropyLoss(ignore_index="x"),
        "CrossEntropyLoss()",
        "ignore_index",
        "'x'",
    ),
    "loss-function": (
        lambda: ft.losses.huber_loss(torch.ones(2), torch.ones(2), delta="x"),
        "huber_loss()",
        "delta",
        "'x'",
    ),
    "optimizer-keyword": (lambda: ft.optim.Adam(_params(), 0.1, bogus=1), "Adam()", "bogus", ""),
    "scheduler": (
        lambda: ft.sched.StepLR(ft.optim.SGD(_params(), 0.1), step_size="x"),
        "StepLR()",
        "step_size",
        "'x'",
    ),
    "flodl-scheduler": (lambda: ft.sched.StepDecay("a", 1, 0.5), "StepDecay()", "base", "'a'"),
    "flodl-dispatch": (lambda: ft.sched.MultiStepLR(0.1, "ab", 0.5), "MultiStepLR()", "milestones", "'ab'"),
    "tracker": (lambda: ft.metrics.Tracker().observe(3, 1.0), "Tracker.observe()", "name", "3"),
    "trend": (lambda: ft.Trend("abc"), "Trend()", "values", "'abc'"),
    "dataloader": (
        lambda: ft.data.DataLoader([torch.ones(4, 2)], "a"),
        "DataLoader()",
        "batch_size",
        "'a'",
    ),
    "dataloader-method": (lambda: _loader().epoch("a"), "DataLoader.epoch()", "epoch", "'a'"),
    "metric": (
        lambda: ft.metrics.top_k_accuracy(torch.randn(4, 3), torch.tensor([0, 1, 2, 0]), k="x"),
        "top_k_accuracy()",
        "k",
        "'x'",
    ),
    "clip": (lambda: ft.clip_grad_norm(_params(), "x"), "clip_grad_norm()", "max_norm", "'x'"),
    "autocast-guard": (
        lambda: ft.AutocastGuard(torch.bfloat16, enabled="yes"),
        "AutocastGuard()",
        "enabled",
        "'yes'",
    ),
    "load-report": (lambda: ft.checkpoint.LoadReport(loaded=3), "LoadReport()", "loaded", "3"),
    "seed": (lambda: ft.manual_seed("x"), "manual_seed()", "seed", "'x'"),
}


@pytest.mark.parametrize("fn, where, arg, value", WRONG_TYPE.values(), ids=list(WRONG_TYPE))
def test_wrong_type_is_an_input_type_error_naming_the_argument(fn, where, arg, value):
    with pytest.raises(ft.InputTypeError) as info:
        fn()
    msg = str(info.value)
    assert type(info.value) is ft.InputTypeError
    assert where in msg and f"'{arg}'" in msg and value in msg, msg


# Counts are read as signed integers and validated: either by the core's own
# rule (Linear's "must be positive") or by the boundary's (non-negative).
NEGATIVE = {
    "layer": (lambda: ft.nn.Linear(-1, 3), "in_features", "-1"),
    "builtin": (lambda: ft.SoftmaxRouter(4, -2), "out_features", "-2"),
    "scheduler": (lambda: ft.sched.StepLR(ft.optim.SGD(_params(), 0.1), -1), "step_size", "-1"),
    "flodl-scheduler": (lambda: ft.sched.StepDecay(0.1, -1, 0.5), "StepDecay(): argument 'step_size'", "-1"),
    "flodl-plateau": (
        lambda: ft.sched.PlateauScheduler(0.1, -1, 0.5),
        "PlateauScheduler(): argument 'patience'",
        "-1",
    ),
    "flodl-dispatch": (lambda: ft.sched.OneCycleLR(0.1, -1), "OneCycleLR(): argument 'total'", "-1"),
    "trend": (lambda: ft.Trend([1.0, 2.0]).slope(-1), "Trend.slope(): argument 'window'", "-1"),
    "dataloader": (
        lambda: ft.data.DataLoader([torch.ones(4, 2)], 2, seed=-1),
        "DataLoader(): argument 'seed'",
        "-1",
    ),
    "dataloader-method": (lambda: _loader().epoch(-1), "DataLoader.epoch(): argument 'epoch'", "-1"),
    "dataloader-shard": (lambda: _loader().shard(-1, 2), "DataLoader.shard(): argument 'rank'", "-1"),
    "builder": (
        lambda: ft.FlowBuilder.from_(ft.nn.Linear(2, 2)).loop_body(ft.nn.ReLU()).for_n(-1),
        "for_n(): argument 'n'",
        "-1",
    ),
    "seed": (lambda: ft.manual_seed(-1), "manual_seed(): argument 'seed'", "-1"),
}


@pytest.mark.parametrize("fn, arg, value", NEGATIVE.values(), ids=list(NEGATIVE))
def test_negative_count_is_a_config_error_naming_the_argument(fn, arg, value):
    with pytest.raises(ft.ConfigError) as info:
        fn()
    msg = str(info.value)
    assert arg in msg and value in msg, msg


def test_too_large_count_names_the_rule():
    with pytest.raises(
        ft.ConfigError, match=r"Linear\(\): argument 'out_features' must be an integer below 2\*\*64"
    ):
        ft.nn.Linear(2, 2**70)
    with pytest.raises(ft.ConfigError, match=r"argument 'epoch' must be an integer below 2\*\*64"):
        _loader().epoch(2**65)


def test_missing_and_unknown_arguments_are_input_type_errors():
    with pytest.raises(ft.InputTypeError, match="in_features"):
        ft.nn.Linear()
    with pytest.raises(ft.InputTypeError, match="bogus"):
        ft.losses.MSELoss(bogus=1)
    with pytest.raises(ft.InputTypeError, match="bogus"):
        ft.losses.mse_loss(torch.ones(2), torch.ones(2), bogus=1)
    with pytest.raises(ft.InputTypeError, match="params"):
        ft.optim.SGD(lr=0.1)


def test_panic_is_an_internal_error_from_a_function_and_from_call():
    if not hasattr(_core, "_panic_for_tests"):
        pytest.skip("built without the test-hooks cargo feature (the wheel)")
    with pytest.raises(ft.InternalError) as info:
        _core._panic_for_tests("boom")
    assert type(info.value) is ft.InternalError
    assert "_panic_for_tests(): internal error in ferrotorch (a Rust panic: boom)" in str(info.value)
    assert type(info.value.__cause__).__name__ == "PanicException"
    with pytest.raises(ft.InternalError, match=r"Thing\(\): internal error.*bang"):
        _core.call("Thing", _core._panic_for_tests.__wrapped__, "bang")
    # Still usable afterwards.
    assert ft.nn.Linear(2, 3)(torch.ones(1, 2)).shape == (1, 3)


def test_callback_type_errors_keep_their_type_and_traceback():
    def bad(*a):
        raise TypeError("argument 'x': mine")

    with pytest.raises(TypeError) as info:
        _core.call("Thing", bad, 1)
    assert type(info.value) is TypeError and str(info.value) == "argument 'x': mine"
    with pytest.raises(OverflowError):
        _core.call("Thing", lambda: int("9" * 30).to_bytes(1, "big"))


# --- classes are plain classes ---------------------------------------------------


def test_loss_class_is_a_torch_module():
    loss = ft.losses.MSELoss()
    assert type(loss) is ft.losses.MSELoss
    assert isinstance(loss, torch.nn.Module) and isinstance(loss, ft.losses.Loss)
    assert type(loss._core) is _core.MSELoss
    p, t = torch.randn(4, 3), torch.randn(4, 3)
    want = torch.nn.functional.mse_loss(p, t)
    assert torch.equal(loss(p, t), want) and torch.equal(loss.compute(p, t), want)
    assert loss.name == "mse" and loss.reduction == "mean" and loss.inputs == ["pred", "target"]
    assert repr(loss) == "MSELoss(reduction='mean')"
    import inspect

    assert list(inspect.signature(ft.losses.CrossEntropyLoss).parameters)[:2] == ["weight", "ignore_index"]
    assert ft.losses.CrossEntropyLoss.__doc__
    assert ft.losses.MAELoss is ft.losses.L1Loss


def test_loss_sits_in_a_module_and_copies():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)
            self.loss = ft.losses.SmoothL1Loss(beta=0.5)

    net = Net().to(torch.float64)
    assert dict(net.named_children())["loss"] is net.loss
    d = torch.nn.ModuleDict({"mse": ft.losses.MSELoss(), "l1": ft.losses.L1Loss(reduction="sum")})
    assert set(d) == {"mse", "l1"}
    for c in (copy.deepcopy(net.loss), pickle.loads(pickle.dumps(net.loss))):
        assert type(c) is ft.losses.SmoothL1Loss and repr(c) == repr(net.loss)
        x, y = torch.randn(5), torch.randn(5)
        assert torch.equal(c(x, y), net.loss(x, y))


def test_loss_subclass_with_its_own_forward_runs_it_in_the_trainer():
    class Doubled(ft.losses.MSELoss):
        def forward(self, pred, target):
            return 2 * self.compute(pred, target)

    loss = Doubled()
    assert type(loss) is Doubled and isinstance(loss, ft.losses.MSELoss)
    p, t = torch.randn(4, 2), torch.randn(4, 2)
    assert torch.allclose(loss(p, t), 2 * torch.nn.functional.mse_loss(p, t))
    assert loss._ft_node() is None and ft.losses.MSELoss()._ft_node() is not None

    def trainer(loss):
        torch.manual_seed(0)
        g = ft.FlowBuilder.from_(ft.nn.Linear(2, 2)).build()
        return ft.Trainer(g, ft.optim.SGD(g.parameters(), 0.0), loss=loss)

    x, y = torch.randn(4, 2), torch.randn(4, 2)
    builtin = trainer(ft.losses.MSELoss())
    assert builtin.builtin_loss
    doubled = trainer(Doubled())
    assert not doubled.builtin_loss
    assert doubled.step(x, y) == pytest.approx(2 * builtin.step(x, y), rel=1e-6)


def test_trainer_refuses_a_loss_of_three_tensors():
    g = ft.FlowBuilder.from_(ft.nn.Linear(2, 2)).build()
    with pytest.raises(ft.ConfigError, match="not \\(pred, target\\)"):
        ft.Trainer(g, ft.optim.SGD(g.parameters(), 0.1), loss=ft.losses.TripletMarginLoss())


def test_extension_classes_are_their_own_public_names():
    tr = ft.metrics.Tracker()
    assert type(tr) is ft.metrics.Tracker is _core.Tracker
    g = ft.FlowBuilder.from_(ft.nn.Linear(2, 2)).build()
    assert isinstance(g.trends([]), ft.TrendGroup) and type(ft.Trend([1.0])) is ft.Trend
    assert type(_loader()) is ft.data.DataLoader


def test_unsubclassable_classes_refuse_at_definition():
    for cls in (_core.Tracker, _core.DataLoader, _core.StepDecay, _core.MSELoss):
        with pytest.raises(TypeError, match="not an acceptable base type"):
            type("Sub", (cls,), {})
    with pytest.raises(TypeError, match="MultiStepLR cannot be subclassed"):

        class Sub(ft.sched.MultiStepLR):
            pass

    # The Python classes subclass as classes do.
    class MyLinear(ft.nn.Linear):
        pass

    class MyAdam(ft.optim.Adam):
        pass

    assert type(MyLinear(2, 2)) is MyLinear and type(MyAdam(_params(), 0.1)) is MyAdam
    with pytest.raises(
        ft.ConfigError, match=r"MyLinear\(\): argument 'out_features' must be an integer below"
    ):
        MyLinear(2, 2**70)


def test_no_import_time_rewriting():
    import ferrotorch.optim

    assert type(ferrotorch.optim.Adam) is type and type(ft.nn.Linear) is type
    assert "_boundary" not in dir(ft)
    # The extension's methods are its own.
    assert type(vars(_core.DataLoader)["epoch"]).__name__ == "method_descriptor"
