"""Bad inputs, as an outside user makes them: every one raises a
ferrotorch.Error subclass (which also derives from the fitting builtin) whose
message names the argument (and, where the rule is about a value, the value).
The table is built from families (every layer constructor, every optimizer,
every loss...) plus the cases reported in issue #12."""

import inspect

import pytest
import torch

import ferrotorch as ft
from ferrotorch import losses, nn, optim, sched

LAYERS = sorted(n for n in dir(nn) if n[0].isupper() and n != "Module")
OPTIMIZERS = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "RAdam", "NAdam", "LAMB", "Adamax"]
LOSSES = sorted(n for n in dir(losses) if n.endswith("_loss"))


def _required(cls):
    return [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]


def _params():
    return [torch.nn.Parameter(torch.randn(3, 2)), torch.nn.Parameter(torch.randn(3))]


def _model():
    return ft.FlowBuilder.from_(nn.Linear(2, 2)).build()


CASES = []


def case(name, fn, cls, *needles):
    CASES.append(pytest.param(fn, cls, needles, id=name))


# Every layer: a str for its first required argument, every argument missing,
# an unknown keyword.
for layer in LAYERS:
    cls = getattr(nn, layer)
    req = _required(cls)
    if req:
        case(
            f"{layer}-str-{req[0]}",
            lambda c=cls, r=req: c("x", *([2] * (len(r) - 1))),
            ft.InputTypeError,
            req[0],
            "x",
        )
        case(f"{layer}-missing", lambda c=cls: c(), ft.InputTypeError, f"'{req[0]}'")
    case(f"{layer}-bogus-kw", lambda c=cls: c(bogus_option=1), ft.InputTypeError, "bogus_option")

# Every optimizer: lr of the wrong type or sign, a single tensor for params,
# a non-iterable, an unknown implementation, negative weight decay.
for o in OPTIMIZERS:
    cls = getattr(optim, o)
    case(f"{o}-lr-str", lambda c=cls: c(_params(), "fast"), ft.ConfigError, "lr", "fast")
    case(f"{o}-lr-negative", lambda c=cls: c(_params(), -0.1), ft.ConfigError, "lr", "-0.1")
    case(f"{o}-lr-nan", lambda c=cls: c(_params(), float("nan")), ft.ConfigError, "lr", "NaN")
    case(
        f"{o}-single-tensor",
        lambda c=cls: c(torch.nn.Parameter(torch.ones(2))),
        ft.InputTypeError,
        "params",
        "single",
    )
    case(f"{o}-params-int", lambda c=cls: c(5), ft.InputTypeError, "params")
    case(f"{o}-implementation", lambda c=cls: c(_params(), implementation="warp"), ft.ConfigError, "warp")
    case(
        f"{o}-weight-decay",
        lambda c=cls: c(_params(), 0.1, weight_decay=-1.0),
        ft.ConfigError,
        "weight_decay",
    )
    case(f"{o}-bogus-kw", lambda c=cls: c(_params(), 0.1, bogus=1), ft.InputTypeError, "bogus")

# Every loss: a non-tensor input, a str reduction.
for lname in LOSSES:
    fn = getattr(losses, lname)
    case(f"{lname}-list-input", lambda f=fn: f([1.0, 2.0], torch.ones(2)), ft.Error, "")
    case(
        f"{lname}-reduction",
        lambda f=fn, n=lname: f(*_loss_args(n), reduction="most"),
        ft.ConfigError,
        "most",
    )


def _loss_args(name):
    x = torch.randn(4, 3)
    if name in ("cross_entropy_loss", "nll_loss", "focal_loss"):
        return (x, torch.tensor([0, 1, 2, 0]))
    if name in ("margin_ranking_loss",):
        return (torch.randn(4), torch.randn(4), torch.ones(4))
    if name in ("cosine_embedding_loss",):
        return (x, torch.randn(4, 3), torch.ones(4))
    if name in ("triplet_margin_loss",):
        return (x, torch.randn(4, 3), torch.randn(4, 3))
    if name == "ctc_loss":
        lp = torch.randn(5, 2, 4).log_softmax(2)
        return (lp, torch.tensor([[1, 2], [1, 3]]), torch.tensor([5, 5]), torch.tensor([2, 2]))
    return (x, torch.rand(4, 3))


# Negative counts and seeds (were OverflowError: can't convert negative int to unsigned).
case("manual_seed-negative", lambda: ft.manual_seed(-1), ft.ConfigError, "'seed'", "-1")
case("manual_seed-huge", lambda: ft.manual_seed(2**70), ft.ConfigError, "'seed'")
case("manual_seed-str", lambda: ft.manual_seed("x"), ft.InputTypeError, "'seed'")
case(
    "for_n-negative",
    lambda: ft.FlowBuilder.from_(nn.Linear(2, 2)).loop_body(nn.ReLU()).for_n(-1),
    ft.ConfigError,
    "'n'",
    "-1",
)
case(
    "DataLoader-seed-negative",
    lambda: ft.data.DataLoader([torch.ones(4, 2), torch.ones(4, 2)], 2, seed=-1),
    ft.ConfigError,
    "seed",
    "-1",
)
case(
    "DataLoader-batch-size-negative",
    lambda: ft.data.DataLoader([torch.ones(4, 2), torch.ones(4, 2)], -2),
    ft.ConfigError,
    "batch_size",
    "-2",
)
case(
    "DataLoader-batch-size-zero",
    lambda: ft.data.DataLoader([torch.ones(4, 2), torch.ones(4, 2)], 0),
    ft.ConfigError,
    "batch_size",
)
case(
    "DataLoader-epoch-negative",
    lambda: ft.data.DataLoader([torch.ones(4, 2), torch.ones(4, 2)], 2).epoch(-1),
    ft.ConfigError,
    "epoch",
    "-1",
)
case(
    "Trainer-grad-accumulation",
    lambda: ft.Trainer(_model(), optim.SGD(_model().parameters(), 0.1), grad_accumulation=-1),
    ft.ConfigError,
    "grad_accumulation",
    "-1",
)
case(
    "Trainer-grad-accumulation-zero",
    lambda: ft.Trainer(_model(), optim.SGD(_model().parameters(), 0.1), grad_accumulation=0),
    ft.ConfigError,
    "grad_accumulation",
)
case(
    "predict-batch-size-zero",
    lambda: ft.Trainer(_model(), optim.SGD(_model().parameters(), 0.1)).predict(
        torch.ones(4, 2), batch_size=0
    ),
    ft.ConfigError,
    "batch_size",
)
case(
    "fit-epochs-negative",
    lambda: ft.Trainer(_model(), optim.SGD(_model().parameters(), 0.1)).fit(
        [(torch.ones(2, 2), torch.ones(2, 2))], epochs=-1
    ),
    ft.ConfigError,
    "epochs",
)


def _empty_step():
    g = _model()
    ft.Trainer(g, optim.SGD(g.parameters(), 0.1), loss="mse").step(torch.ones(0, 2), torch.ones(0, 2))


case("step-empty-batch", _empty_step, ft.ConfigError, "empty", "input 0")

# Graph building.
case(
    "using-no-tags",
    lambda: ft.FlowBuilder.from_(nn.Linear(2, 2)).tag("a").through(nn.Linear(2, 2)).using().build(),
    ft.GraphError,
    "using",
    "at least one tag",
)
case(
    "internal-unknown",
    lambda: ft.FlowBuilder.from_(nn.Linear(2, 2)).tag("a").internal("nope").build(),
    ft.GraphError,
    "internal",
    "nope",
)
case("tag-dot", lambda: ft.FlowBuilder.from_(nn.Linear(2, 2)).tag("a.b").build(), ft.GraphError, "a.b")
case("through-int", lambda: ft.FlowBuilder.from_(nn.Linear(2, 2)).through(3), ft.InputTypeError, "")
case("graph-call-str", lambda: _model()("x"), ft.InputTypeError, "")
case("graph-unknown-tag", lambda: _model().tagged("nope"), ft.TagError, "nope")

# Schedules and schedulers.
case(
    "schedule-returns-str",
    lambda: ft.Trainer(
        _model(), optim.SGD(_model().parameters(), 0.1), loss="mse", scheduler=lambda s: "fast"
    ).step(torch.ones(2, 2), torch.ones(2, 2)),
    ft.InputTypeError,
    "schedule",
    "'fast'",
    "float",
)
case("StepLR-step-size-zero", lambda: sched.StepLR(optim.SGD(_params(), 0.1), 0), ft.ConfigError, "step_size")
case("StepLR-optimizer-str", lambda: sched.StepLR("opt", 3), ft.Error, "")
case("cosine-str", lambda: ft.schedule.cosine_decay("a", 10), ft.InputTypeError, "")
case("schedule-negative-step", lambda: ft.schedule.constant(0.1)(-1), ft.ConfigError, "step", "-1")
case("clip-negative", lambda: ft.clip_grad_norm(_params(), -1.0), ft.ConfigError, "")
case("clip-str", lambda: ft.clip_grad_norm(_params(), "x"), ft.InputTypeError, "")
case("GradScaler-init-scale", lambda: ft.GradScaler(init_scale=-1.0), ft.ConfigError, "init_scale")
case("optimizer-by-name", lambda: optim.by_name("adamm", _params(), 0.1), ft.ConfigError, "adamm")
case("group-builder-empty", lambda: optim.Adam.with_groups().build(), ft.ConfigError, "group")
case(
    "param-group-unknown-key", lambda: optim.SGD(_params(), 0.1).param_groups[0]["nope"], ft.TagError, "nope"
)
case(
    "param-group-params",
    lambda: optim.SGD(_params(), 0.1).param_groups[0].__setitem__("params", []),
    ft.ConfigError,
    "params",
)
case(
    "load-state-dict-junk",
    lambda: optim.SGD(_params(), 0.1).load_state_dict({"state": {}, "param_groups": 3}),
    ft.Error,
    "",
)
case(
    "scaler-load-state-str",
    lambda: ft.GradScaler().load_state_dict(dict(ft.GradScaler().state_dict(), scale="x")),
    ft.ConfigError,
    "'scale'",
    "x",
)
case("trend-index", lambda: _model().trends([])[3], ft.OutOfRangeError, "3")


@pytest.mark.parametrize("fn, cls, needles", CASES)
def test_bad_input_is_a_named_ferrotorch_error(fn, cls, needles):
    with pytest.raises(cls) as info:
        fn()
    assert isinstance(info.value, ft.Error)
    msg = str(info.value)
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"


def test_table_is_large():
    assert len(CASES) >= 200


def test_hierarchy_is_closed_and_derives_from_builtins():
    pairs = {
        ft.ConfigError: ValueError,
        ft.ShapeError: ValueError,
        ft.DTypeError: TypeError,
        ft.InputTypeError: TypeError,
        ft.GraphError: ValueError,
        ft.TagError: KeyError,
        ft.OutOfRangeError: IndexError,
        ft.TorchError: RuntimeError,
        ft.CheckpointError: ValueError,
        ft.FileError: OSError,
        ft.TrainingError: RuntimeError,
        ft.DeviceError: ValueError,
        ft.InternalError: RuntimeError,
    }
    for cls, builtin in pairs.items():
        assert issubclass(cls, ft.Error) and issubclass(cls, builtin), cls
        assert cls.__module__ == "ferrotorch.errors" and getattr(ft.errors, cls.__name__) is cls
    assert ft._core.ConfigError is ft.ConfigError  # one set of classes, raised by Rust directly
    assert str(ft.TagError("plain")) == "plain"


def test_panic_surfaces_as_internal_error():
    if not hasattr(ft._core, "_panic_for_tests"):
        pytest.skip("_core built without the test-hooks feature (the wheel): no panic hook")
    with pytest.raises(ft.InternalError, match="boom"):
        ft._core._panic_for_tests("boom")


def test_callback_exceptions_keep_their_type():
    class Mine(TypeError):
        pass

    def node(x):
        raise Mine("from the user")

    g = ft.FlowBuilder.from_(nn.Linear(2, 2)).through(node).build()
    with pytest.raises(Mine, match="from the user"):
        g(torch.ones(1, 2))


def test_cyclic_scale_fn_error_is_raised_not_nan():
    opt = optim.SGD(_params(), 0.1)

    def scale(x):
        raise RuntimeError("scale broke")

    with pytest.raises(RuntimeError, match="scale broke"):  # was a NaN lr
        sched.CyclicLR(opt, 0.01, 0.1, step_size_up=2, scale_fn=scale, cycle_momentum=False)
    assert all(g["lr"] == g["lr"] for g in opt.param_groups)  # no NaN written


def test_python_node_train_errors_are_reported():
    class Bad(torch.nn.Module):
        def forward(self, x):
            return x

        def train(self, mode=True):
            raise RuntimeError("train refused")

    g = ft.FlowBuilder.from_(nn.Linear(2, 2)).through(Bad()).build()
    with pytest.raises(RuntimeError, match="train refused"):
        g.eval()
