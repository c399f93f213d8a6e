"""Whole-step CUDA graphs (``Trainer(cuda_graph=...)``).

Without a GPU: the eligibility analysis, the capture key and its re-capture
triggers, the mode's errors and warnings, the capturable optimizer path
(lr as a device tensor, written in place by schedules) against torch's fused
optimizers with a tensor lr, and the captured step's own code through
``cuda_graph="_emulate"`` (capture records nothing and each replay runs the
step's code over the static buffers) against eager mode, bit for bit.
Tests marked ``cuda`` run the real capture where a GPU is at hand.
"""

import warnings

import pytest
import torch

import ferrotorch as ft
from _mlp import mlp
from ferrotorch import (
    ArgmaxSelector,
    FlowBuilder,
    GradScaler,
    MergeOp,
    SoftmaxRouter,
    StateAdd,
    ThresholdHalt,
    Trainer,
    schedule,
)
from ferrotorch.data import DataLoader
from ferrotorch.nn import GELU, Dropout, Identity, Linear, ReLU, Tanh
from ferrotorch.optim import SGD, Adagrad, Adam, AdamW, RMSprop

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
cuda = pytest.mark.cuda

WARMUP = 3  # eager steps per shape before capture (torch's recipe)


def _data(n=64, seed=1, d_in=4, d_out=3):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=gen), torch.randn(n, d_out, generator=gen)


def _params(m):
    return [p.detach().clone() for p in m.parameters()]


def _equal(a, b):
    return all(torch.equal(x, y) for x, y in zip(a, b))


def _pair(make_model, make_opt, mode, **kw):
    """An eager trainer and a graph-mode one on identical fresh models."""
    out = []
    for m in ("off", mode):
        model = make_model()
        out.append(Trainer(model, make_opt(model), cuda_graph=False if m == "off" else m, **kw))
    return out


def _run_both(eager, graph, batches):
    """Steps both trainers on the same batches; every loss and every
    parameter after every step must agree exactly."""
    for i, (x, y) in enumerate(batches):
        le, lg = eager.step(x, y), graph.step(x, y)
        assert le == lg or (le != le and lg != lg), f"step {i}: loss {le} vs {lg}"
        assert _equal(_params(eager.model), _params(graph.model)), f"step {i}: parameters differ"


# --- the mode's switches ----------------------------------------------------------


def test_auto_on_the_cpu_is_silently_eager():
    g = mlp()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = Trainer(g, Adam(g.parameters(), 0.01), cuda_graph="auto")
    s = t.cuda_graph_status()
    assert (s["mode"], s["active"], s["node"]) == ("auto", False, "cpu")
    assert "CUDA device" in s["reason"] and not s["warn"]
    x, y = _data()
    t.step(x, y)
    assert t.cuda_graph_status()["captures"] == 0


def test_true_on_the_cpu_raises_naming_the_device():
    g = mlp()
    with pytest.raises(ft.DeviceError, match=r"cuda_graph=True.*runs on cpu.*CUDA device"):
        Trainer(g, Adam(g.parameters(), 0.01), cuda_graph=True)


def test_false_is_the_default_and_bad_values_are_config_errors():
    g = mlp()
    assert Trainer(g, Adam(g.parameters(), 0.01)).cuda_graph_status()["mode"] == "off"
    with pytest.raises(ft.ConfigError, match="cuda_graph must be 'auto', True or False"):
        Trainer(g, Adam(g.parameters(), 0.01), cuda_graph="sometimes")
    # The test mode is private: its old public name is refused.
    with pytest.raises(ft.ConfigError, match="cuda_graph must be 'auto', True or False, got 'emulate'"):
        Trainer(g, Adam(g.parameters(), 0.01), cuda_graph="emulate")


# --- eligibility: the first node that needs the host names itself ------------------


def _times(k):
    return lambda t: t * k


def _blocked(model, opt=None, **kw):
    """The ConfigError a capture-or-raise trainer gives for ``model``."""
    with pytest.raises(ft.ConfigError) as e:
        Trainer(model, opt or Adam(model.parameters(), 0.01), cuda_graph="_emulate", **kw)
    return str(e.value)


def test_a_python_node_blocks_and_is_named():
    g = FlowBuilder.from_(Linear(4, 3)).through(lambda t: t * 2).build()
    msg = _blocked(g)
    assert "'module_1' prevents capture" in msg or "prevents capture" in msg
    assert "Python callable" in msg and "GIL" in msg


@pytest.mark.parametrize(
    "build, reason",
    [
        (
            lambda: FlowBuilder.from_(Linear(4, 4)).through(ArgmaxSelector(4, 2)),
            "argmax_selector picks a branch",
        ),
        (
            lambda: FlowBuilder.from_(Linear(4, 3)).loop_body(Linear(3, 3)).while_cond(ThresholdHalt(10), 4),
            "while_cond reads the condition on the host",
        ),
        (
            lambda: FlowBuilder.from_(Linear(4, 3)).loop_body(Linear(3, 3)).until_cond(ThresholdHalt(10), 4),
            "until_cond reads the condition on the host",
        ),
    ],
)
def test_host_side_control_blocks_and_is_named(build, reason):
    g = build().build()
    msg = _blocked(g)
    assert reason in msg
    # The named node exists in the graph.
    node = msg.split("'")[1]
    assert node in g.node_ids(), (node, g.node_ids())


def test_a_switch_with_a_capturable_router_still_blocks():
    g = FlowBuilder.from_(Linear(4, 4)).switch(SoftmaxRouter(4, 2), [Linear(4, 3), Linear(4, 3)]).build()
    assert "switch reads the router's choice on the host" in _blocked(g)


def test_trainer_level_blockers():
    g = mlp()
    assert "Python loss callable" in _blocked(g, loss=lambda p, y: ((p - y) ** 2).mean())
    assert "grad_accumulation" in _blocked(mlp(), grad_accumulation=2)
    g = mlp()
    assert "RMSprop: only the fused implementation has a capturable path" in _blocked(
        g, RMSprop(g.parameters(), 0.01)
    )
    g = mlp()
    assert "only the fused implementation" in _blocked(
        g, Adam(g.parameters(), 0.01, implementation="foreach")
    )
    g = mlp()
    msg = _blocked(g, torch.optim.Adam(g.parameters(), 0.01))
    assert "'optimizer' prevents capture" in msg


def _capturable_graph(d=4):
    """for_n, gate, split/merge, also, map(...).batched() and a forward ref."""
    experts = [FlowBuilder.from_(Linear(d, d)).through(GELU()).build() for _ in range(2)]
    body = FlowBuilder.new().also(FlowBuilder.from_(Linear(d, d)).through(Tanh()).build()).build()
    return (
        FlowBuilder.from_(Linear(d, d))
        .through(StateAdd())
        .using("mem")
        .gate(SoftmaxRouter(d, 2), experts)
        .loop_body(body)
        .for_n(2)
        .split([Identity(), ReLU()])
        .merge(MergeOp.MEAN)
        .map(Linear(d, d))
        .batched()
        .each()
        .tag("mem")
        .through(Linear(d, 3))
        .build()
    )


def test_capturable_constructs_pass_the_analysis():
    g = _capturable_graph()
    t = Trainer(g, Adam(g.parameters(), 0.01), cuda_graph="_emulate")
    s = t.cuda_graph_status()
    assert s["active"] and s["node"] is None and s["reason"] is None


# --- the capture key: what forces a re-capture, and what does not ------------------


def test_the_key_changes_with_what_a_graph_bakes_in_and_not_with_the_lr():
    g = FlowBuilder.from_(Linear(4, 8)).tag("a").through(GELU()).through(Linear(8, 3)).build()
    opt = Adam(g.parameters(), 0.01)
    t = Trainer(g, opt, cuda_graph="_emulate")
    key = lambda: t.cuda_graph_status()["key"]  # noqa: E731
    k0 = key()
    opt.set_lr(0.5)
    assert key() == k0, "an lr change is written into the device lr tensor, not re-captured"
    g.freeze("a")
    k1 = key()
    assert k1 != k0, "freeze"
    g.thaw("a")
    assert key() != k1, "thaw"
    k2 = key()
    opt.load_state_dict(opt.state_dict())
    assert key() != k2, "optimizer state load"
    k3 = key()
    opt.set_group_hyper(0, "weight_decay", 0.1)
    assert key() != k3, "a hyperparameter baked into the kernel"
    k4 = key()
    extra = torch.zeros(2, requires_grad=True)
    opt.add_param_group({"params": [extra]})
    assert key() != k4, "param groups"
    k5 = key()
    g.to(torch.float64)
    assert key() != k5, "dtype move"


def test_a_short_last_batch_keeps_the_main_graph_and_matches_eager():
    x, y = _data(n=70)  # 8 batches of 8 and one of 6 per epoch
    make = lambda: mlp(3)  # noqa: E731
    eager, graph = _pair(make, lambda m: Adam(m.parameters(), 0.01), "_emulate")
    for t in (eager, graph):
        t.fit(DataLoader((x, y), 8, shuffle=True, seed=5), epochs=5)
    assert _equal(_params(eager.model), _params(graph.model))
    s = graph.cuda_graph_status()
    assert (s["graphs"], s["captures"], s["invalidations"]) == (2, 2, 0)
    # 45 steps: 3 warm-up each for two shapes, the rest replayed.
    assert s["replays"] == 45 - 2 * WARMUP


# --- graph mode equals eager mode --------------------------------------------------


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda m: Adam(m.parameters(), 0.01),
        lambda m: AdamW(m.parameters(), 0.01, 0.05),
        lambda m: SGD(m.parameters(), 0.05, 0.9),
        lambda m: Adagrad(m.parameters(), 0.05),
    ],
    ids=["adam", "adamw", "sgd", "adagrad"],
)
def test_graph_mode_equals_eager_over_120_steps_with_a_per_step_schedule(make_opt):
    eager, graph = _pair(
        lambda: mlp(1),
        make_opt,
        "_emulate",
        scheduler=schedule.warmup_cosine(0.0, 0.02, 10, 120),
        clip_grad_norm=0.5,
    )
    gen = torch.Generator().manual_seed(2)
    batches = [(torch.randn(16, 4, generator=gen), torch.randn(16, 3, generator=gen)) for _ in range(120)]
    _run_both(eager, graph, batches)
    s = graph.cuda_graph_status()
    assert (s["captures"], s["replays"]) == (1, 120 - WARMUP)


def test_grad_scaler_skips_an_injected_inf_in_graph_mode_as_in_eager():
    models = [mlp(4), mlp(4)]
    scalers = [GradScaler(init_scale=256.0, growth_interval=3) for _ in models]
    eager, graph = (
        Trainer(m, Adam(m.parameters(), 0.01), scaler=sc, clip_grad_norm=1.0, cuda_graph=mode)
        for m, sc, mode in zip(models, scalers, (False, "_emulate"))
    )
    gen = torch.Generator().manual_seed(3)
    batches = [(torch.randn(8, 4, generator=gen), torch.randn(8, 3, generator=gen)) for _ in range(30)]
    batches[12][0][0, 0] = float("inf")
    for i, (x, y) in enumerate(batches):
        before, scale = _params(models[1]), scalers[1].get_scale()
        eager.step(x, y)
        graph.step(x, y)
        assert _equal(_params(models[0]), _params(models[1])), f"step {i}"
        assert scalers[0].get_scale() == scalers[1].get_scale(), f"step {i}: scale"
        if i == 12:
            assert _equal(before, _params(models[1])), "the inf step changed the weights"
            assert scalers[1].get_scale() == scale / 2


def test_nonfinite_without_a_scaler_skip_and_raise():
    gen = torch.Generator().manual_seed(4)
    batches = [(torch.randn(8, 4, generator=gen), torch.randn(8, 3, generator=gen)) for _ in range(10)]
    batches[6][0][1, 2] = float("nan")
    eager, graph = _pair(
        lambda: mlp(5), lambda m: Adam(m.parameters(), 0.01), "_emulate", on_nonfinite="skip"
    )
    _run_both(eager, graph, batches)
    assert eager._engine.state["skipped"] == graph._engine.state["skipped"] == 1
    # "raise": the step is skipped on the device and reported; nothing changed.
    g = mlp(5)
    t = Trainer(g, Adam(g.parameters(), 0.01), cuda_graph="_emulate")
    for x, y in batches[:6]:
        t.step(x, y)
    before, counters = _params(g), dict(t._engine.state)
    with pytest.raises(ft.TrainingError, match=r"non-finite loss \(nan\) or gradient at step 6"):
        t.step(*batches[6])
    assert _equal(before, _params(g)) and dict(t._engine.state) == counters
    t.step(*batches[7])  # and training goes on


def test_dropout_graph_mode_equals_eager():
    def make():
        ft.manual_seed(7)
        return (
            FlowBuilder.from_(Linear(4, 16))
            .through(GELU())
            .through(Dropout(0.3))
            .through(Linear(16, 3))
            .build()
        )

    eager, graph = _pair(make, lambda m: Adam(m.parameters(), 0.01), "_emulate")
    gen = torch.Generator().manual_seed(6)
    batches = [(torch.randn(8, 4, generator=gen), torch.randn(8, 3, generator=gen)) for _ in range(12)]
    for i, (x, y) in enumerate(batches):
        torch.manual_seed(100 + i)
        le = eager.step(x, y)
        torch.manual_seed(100 + i)
        lg = graph.step(x, y)
        assert le == lg, f"step {i}"
    assert _equal(_params(eager.model), _params(graph.model))


def test_forward_refs_and_composites_equal_eager():
    def make():
        ft.manual_seed(8)
        return _capturable_graph()

    eager, graph = _pair(make, lambda m: Adam(m.parameters(), 0.005), "_emulate")
    gen = torch.Generator().manual_seed(9)
    batches = [(torch.randn(8, 4, generator=gen), torch.randn(8, 3, generator=gen)) for _ in range(20)]
    _run_both(eager, graph, batches)
    assert graph.cuda_graph_status()["replays"] == 20 - WARMUP
    # reset_state zeroes the pinned buffers in place: still equal afterwards.
    eager.model.reset_state()
    graph.model.reset_state()
    _run_both(eager, graph, batches[:5])


def test_mid_run_load_state_recaptures_and_matches_eager(tmp_path):
    gen = torch.Generator().manual_seed(10)
    batches = [(torch.randn(8, 4, generator=gen), torch.randn(8, 3, generator=gen)) for _ in range(30)]
    sched = schedule.cosine_decay(0.02, 30)
    eager, graph = _pair(lambda: mlp(11), lambda m: Adam(m.parameters(), 0.02), "_emulate", scheduler=sched)
    for i, t in enumerate((eager, graph)):
        for x, y in batches[:10]:
            t.step(x, y)
        t.save_state(str(tmp_path / f"s{i}.fdlt"))
        for x, y in batches[10:20]:
            t.step(x, y)
        t.load_state(str(tmp_path / f"s{i}.fdlt"))
        for x, y in batches[10:30]:
            t.step(x, y)
    assert _equal(_params(eager.model), _params(graph.model))
    s = graph.cuda_graph_status()
    assert s["captures"] == 2, s  # once before the load, once after


# --- the capturable optimizer path against torch's fused optimizers ----------------


@pytest.mark.parametrize("name", ["Adam", "AdamW", "SGD", "Adagrad"])
def test_capturable_path_matches_torch_fused_with_a_tensor_lr(name):
    """Graph mode holds the lr in a device tensor that each scheduled step
    overwrites in place; torch's fused optimizers take the same tensor lr."""
    kw = {"Adam": {}, "AdamW": {"weight_decay": 0.05}, "SGD": {"momentum": 0.9}, "Adagrad": {}}[name]
    lrs = [0.02 * (0.5 + 0.5 * torch.cos(torch.tensor(i / 100 * 3.14159)).item()) for i in range(110)]
    g = mlp(12)
    ref = [p.detach().clone().requires_grad_(True) for p in g.parameters()]
    lr_t = torch.tensor(lrs[0], dtype=torch.float64)
    topt = getattr(torch.optim, name)(ref, lr=lr_t, fused=True, **kw)
    fopt = getattr(ft.optim, name)(g.parameters(), lrs[0], **kw)
    t = Trainer(g, fopt, scheduler=lambda s: lrs[s], cuda_graph="_emulate")
    gen = torch.Generator().manual_seed(13)
    for i in range(110):
        x, y = torch.randn(8, 4, generator=gen), torch.randn(8, 3, generator=gen)
        t.step(x, y)
        lr_t.fill_(lrs[i])
        topt.zero_grad()
        h = torch.nn.functional.gelu(x @ ref[0].T + ref[1])
        torch.nn.functional.mse_loss(h @ ref[2].T + ref[3], y).backward()
        topt.step()
        for a, b in zip(g.parameters(), ref):
            torch.testing.assert_close(a, b.detach(), rtol=1e-5, atol=1e-6, msg=f"{name} step {i}")


# --- on a GPU: the real capture ----------------------------------------------------


def _gpu_pair(make_model, make_opt, **kw):
    out = []
    for mode in (False, True):
        model = make_model()
        model.to("cuda")
        out.append(Trainer(model, make_opt(model), device="cuda", cuda_graph=mode, **kw))
    return out


def _close(a, b, tol):
    return all(torch.allclose(x, y, rtol=tol, atol=tol) for x, y in zip(a, b))


@cuda
@needs_cuda
def test_gpu_graph_equals_eager_over_120_steps_with_a_schedule():
    eager, graph = _gpu_pair(
        lambda: mlp(1),
        lambda m: Adam(m.parameters(), 0.01),
        scheduler=schedule.warmup_cosine(0.0, 0.02, 10, 120),
    )
    gen = torch.Generator().manual_seed(2)
    for _ in range(120):
        x, y = torch.randn(64, 4, generator=gen), torch.randn(64, 3, generator=gen)
        le, lg = eager.step(x, y), graph.step(x, y)
        assert abs(le - lg) <= 1e-5 * max(1.0, abs(le))
    assert _close(_params(eager.model), _params(graph.model), 1e-5)
    s = graph.cuda_graph_status()
    assert s["active"] and (s["captures"], s["replays"]) == (1, 120 - WARMUP)


@cuda
@needs_cuda
def test_gpu_grad_scaler_skips_an_injected_inf():
    models = [mlp(4), mlp(4)]
    scalers = [GradScaler(init_scale=256.0), GradScaler(init_scale=256.0)]
    ts = []
    for m, sc, mode in zip(models, scalers, (False, True)):
        m.to("cuda")
        ts.append(Trainer(m, Adam(m.parameters(), 0.01), scaler=sc, device="cuda", cuda_graph=mode))
    gen = torch.Generator().manual_seed(3)
    for i in range(20):
        x, y = torch.randn(32, 4, generator=gen), torch.randn(32, 3, generator=gen)
        if i == 10:
            x[0, 0] = float("inf")
        before = _params(models[1])
        for t in ts:
            t.step(x, y)
        if i == 10:
            assert _equal(before, _params(models[1]))
    assert scalers[0].get_scale() == scalers[1].get_scale() == 128.0
    assert _close(_params(models[0]), _params(models[1]), 1e-5)


@cuda
@needs_cuda
def test_gpu_dropout_short_batch_and_mid_run_load_state(tmp_path):
    def make():
        ft.manual_seed(7)
        return (
            FlowBuilder.from_(Linear(4, 32))
            .through(GELU())
            .through(Dropout(0.2))
            .through(Linear(32, 3))
            .build()
        )

    eager, graph = _gpu_pair(make, lambda m: Adam(m.parameters(), 0.01))
    x, y = _data(n=70)
    for t in (eager, graph):
        torch.cuda.manual_seed(0)
        t.fit(DataLoader((x, y), 8, shuffle=True, seed=5), epochs=4)
        t.save_state(str(tmp_path / f"{id(t)}.fdlt"))
        t.fit(DataLoader((x, y), 8, shuffle=True, seed=5), epochs=5)
        t.load_state(str(tmp_path / f"{id(t)}.fdlt"))
        t.fit(DataLoader((x, y), 8, shuffle=True, seed=5), epochs=6)
    # Philox draws follow the same offsets in both modes; kernels may differ
    # in summation order, so float tolerance.
    assert _close(_params(eager.model), _params(graph.model), 1e-4)
    s = graph.cuda_graph_status()
    # Both shapes captured before the load; the main one again after it.
    assert s["graphs"] == 2 and s["captures"] >= 3, s


@cuda
@needs_cuda
def test_gpu_auto_warns_once_naming_the_node():
    g = FlowBuilder.from_(Linear(4, 3)).through(lambda t: t * 2).build()
    g.to("cuda")
    with pytest.warns(RuntimeWarning, match="prevents CUDA graph capture.*Python callable"):
        t = Trainer(g, Adam(g.parameters(), 0.01), device="cuda", cuda_graph="auto")
    assert not t.cuda_graph_status()["active"]
