"""Fidelity with floDl itself, checked against files floDl 0.5.3 wrote.

tests/fixtures/flodl/ holds .fdl files written by floDl (CPU, the same
libtorch as torch==2.11.0, manual_seed(42) before each graph) and facts.json,
floDl's own report per graph: node ids, parameter names and shapes, the
structural hash, a fixed input, the forward output's f32 bits and the initial
weights' bits. For constructs those files do not cover, the expected hash is
assembled here byte by byte from floDl's recipe (see rust/graph/hash.rs).
"""

import gzip
import hashlib
import json
import os
import pathlib
import struct
import subprocess
import sys

import pytest
import torch

import ferrotorch as ft
from ferrotorch import (
    FixedSelector,
    FlowBuilder,
    LearnedHalt,
    MergeOp,
    SoftmaxRouter,
    StateAdd,
    ThresholdHalt,
)
from ferrotorch.nn import GELU, BatchNorm, LayerNorm, Linear

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "flodl"
FACTS = json.loads((FIXTURES / "facts.json").read_text())


def tutorial():
    return (
        FlowBuilder.from_(Linear(2, 16))
        .through(GELU())
        .through(LayerNorm(16))
        .also(Linear(16, 16))
        .through(Linear(16, 2))
        .build()
    )


def residual_tower():
    b = FlowBuilder.from_(Linear(8, 8))
    for _ in range(3):
        b = b.also(FlowBuilder.from_(Linear(8, 8)).through(GELU()).through(LayerNorm(8)).build())
    return b.through(Linear(8, 8)).build()


def gate():
    return FlowBuilder.from_(Linear(8, 8)).gate(SoftmaxRouter(8, 2), [Linear(8, 8), Linear(8, 8)]).build()


BUILDERS = {"a_tutorial": tutorial, "c_residual_tower": residual_tower, "f1_gate": gate}
# facts.json lists a .gz twin for every graph; floDl's run shipped a_tutorial's
FILES = [(name, f) for name in BUILDERS for f in FACTS[name]["files"] if (FIXTURES / f).exists()]

# The CPU kernels floDl's run used: MKL's generic x86 GEMM (what MKL picks on
# an AMD CPU; MKL_CBWR=COMPATIBLE pins it anywhere) and ATen's AVX2 kernels.
# Float results of GEMM and vectorised ops depend on these, not on floDl or
# ferrotorch: under them ferrotorch reproduces floDl's output bits.
FLODL_KERNELS = {"MKL_CBWR": "COMPATIBLE", "ATEN_CPU_CAPABILITY": "avx2"}

FORWARD_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import torch, ferrotorch as ft
import test_flodl_fidelity as t
out = {"capability": torch.backends.cpu.get_cpu_capability()}
for name, file in t.FILES:
    g = t.BUILDERS[name]()
    g.load_checkpoint(t.FIXTURES / file, strict_hash=True)
    with ft.no_grad():
        out[file] = t.f32_bits(g(t.from_bits(t.FACTS[name]["input"])))
print(json.dumps(out))
"""


def f32_bits(t):
    """The f32 bit patterns of a tensor, as floDl's facts spell them."""
    flat = t.detach().to(torch.float32).contiguous().reshape(-1)
    return [format(struct.unpack("<I", struct.pack("<f", v))[0], "08x") for v in flat.tolist()]


def from_bits(spec):
    raw = b"".join(struct.pack("<I", int(h, 16)) for h in spec["bits"])
    return torch.frombuffer(bytearray(raw), dtype=torch.float32).reshape(spec["shape"]).clone()


def test_fixtures_present():
    # every file floDl wrote is exercised below
    on_disk = sorted(p.name for p in FIXTURES.iterdir() if p.name.endswith((".fdl", ".fdl.gz")))
    assert on_disk == sorted(f for _, f in FILES)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_ids_names_shapes_and_hash_equal_flodl(name):
    facts = FACTS[name]
    g = BUILDERS[name]()
    assert g.node_ids() == facts["node_ids_exec_order"]
    assert [(n, list(p.shape)) for n, p in g.named_parameters()] == [
        (n, s) for n, s in facts["named_parameters"]
    ]
    assert [(n, list(b.shape)) for n, b in g.named_buffers()] == [(n, s) for n, s in facts["named_buffers"]]
    assert g.structural_hash() == facts["structural_hash"]
    assert g.short_hash() == facts["short_hash"]


def reference_forward(name, params, x):
    """The same graph written with torch.nn.functional, on the file's weights."""
    import torch.nn.functional as F

    def lin(prefix, h):
        return F.linear(h, params[f"{prefix}weight"], params[f"{prefix}bias"])

    if name == "a_tutorial":
        h = F.layer_norm(
            F.gelu(lin("linear_1/", x)), [16], params["layernorm_3/weight"], params["layernorm_3/bias"]
        )
        return lin("linear_6/", h + lin("linear_4/", h))
    if name == "c_residual_tower":
        h = lin("linear_1/", x)
        for gid in ("graph_2", "graph_4", "graph_6"):
            inner = F.gelu(F.linear(h, params[f"{gid}/weight_0"], params[f"{gid}/bias_0"]))
            h = h + F.layer_norm(inner, [8], params[f"{gid}/weight_1"], params[f"{gid}/bias_1"])
        return lin("linear_8/", h)
    h = lin("linear_1/", x)
    w = torch.softmax(F.linear(h, params["gate_2/weight_0"], params["gate_2/bias_0"]), -1)
    experts = [F.linear(h, params[f"gate_2/weight_{i}"], params[f"gate_2/bias_{i}"]) for i in (1, 2)]
    return (torch.stack(experts, -1) * w.unsqueeze(-2)).sum(-1)


@pytest.mark.parametrize("name,file", FILES)
def test_flodl_file_loads_with_hash_check_into_the_same_graph(name, file):
    facts = FACTS[name]
    ft.manual_seed(0)  # weights unlike the file's: the load must replace all of them
    g = BUILDERS[name]()
    report = g.load_checkpoint(FIXTURES / file, strict_hash=True)
    assert report.loaded == [n for n, _ in facts["named_parameters"]]
    assert report.skipped == [] and report.missing == []
    # the loaded weights are floDl's initial weights, bit for bit
    params = dict(g.named_parameters())
    for p in facts["params"]:
        assert f32_bits(params[p["name"]]) == p["bits"], p["name"]
    x = from_bits(facts["input"])
    assert f32_bits(x) == facts["input"]["bits"]
    with ft.no_grad():
        y = g(x)
    (out,) = facts["forward"]
    assert list(y.shape) == out["shape"]
    # same kernels in this process: bit-equal to the graph written in torch
    ref = reference_forward(name, {k: v.detach() for k, v in params.items()}, x)
    assert f32_bits(y) == f32_bits(ref)
    torch.testing.assert_close(y, torch.tensor(out["values"]).reshape(out["shape"]), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def forward_under_flodl_kernels():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), **FLODL_KERNELS)
    here = str(pathlib.Path(__file__).resolve().parent)
    r = subprocess.run(
        [sys.executable, "-c", FORWARD_SCRIPT, here], env=env, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name,file", FILES)
def test_forward_reproduces_flodls_output_bits(name, file, forward_under_flodl_kernels):
    """floDl's file, loaded with the hash check, run on floDl's CPU kernels:
    the output equals floDl's own output bit for bit."""
    if forward_under_flodl_kernels["capability"] != "AVX2":
        pytest.skip("this CPU lacks AVX2, the kernels floDl's run used")
    assert forward_under_flodl_kernels[file] == FACTS[name]["forward"][0]["bits"]


def test_hash_check_rejects_another_architecture():
    other = (
        FlowBuilder.from_(Linear(2, 16)).through(GELU()).through(LayerNorm(16)).through(Linear(16, 2)).build()
    )
    with pytest.raises(ft.CheckpointError, match="mismatch"):
        other.load_checkpoint(FIXTURES / "a_tutorial.fdl", strict_hash=True)


@pytest.mark.parametrize("name", list(BUILDERS))
def test_seeded_init_is_bit_equal_to_flodl(name):
    facts = FACTS[name]
    ft.manual_seed(42)
    g = BUILDERS[name]()
    params = dict(g.named_parameters())
    assert len(facts["params"]) == len(params)
    for p in facts["params"]:
        assert list(params[p["name"]].shape) == p["shape"]
        assert f32_bits(params[p["name"]]) == p["bits"], p["name"]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_seeded_graph_saves_flodls_exact_bytes(name, tmp_path):
    """Same seed, same graph: ferrotorch writes floDl's file byte for byte."""
    ft.manual_seed(42)
    g = BUILDERS[name]()
    for f in [f for n, f in FILES if n == name]:
        ours = tmp_path / f
        g.save_checkpoint(ours)
        theirs = (FIXTURES / f).read_bytes()
        if f.endswith(".gz"):  # the deflate stream may differ; the payload must not
            assert gzip.decompress(ours.read_bytes()) == gzip.decompress(theirs)
        else:
            assert ours.read_bytes() == theirs


# ------------------------------------------------ hash recipe, other constructs


def recipe_hash(nodes, edges, tags, inputs, output):
    """floDl's structural hash, assembled from its byte recipe.

    nodes: (id, module name or None, [(raw name, shape)] params, buffers,
    nested hash or None), in topological order. edges: (from, from_port, to,
    to_port) in creation order. tags: (name, node index in creation order).
    inputs: (name, node id). output: node id.
    """
    h = hashlib.sha256()

    def z(s):
        h.update(s.encode() + b"\0")

    def shaped(kind, entries):
        for n, shape in sorted(entries, key=lambda e: e[0]):  # stable, like floDl
            h.update(kind + n.encode() + b"\0")
            for d in shape:
                h.update(struct.pack("<q", d))

    for nid, mod, params, bufs, nested in nodes:
        z(nid)
        if mod is not None:
            z(mod)
            shaped(b"P", params)
            shaped(b"B", bufs)
            if nested is not None:
                h.update(b"G" + nested.encode())
    h.update(b"EDGES")
    for e in edges:
        for part in e:
            z(part)
    h.update(b"TAGS")
    for name, idx in sorted(tags):
        z(name)
        h.update(struct.pack("<QQ", idx, 0))
    h.update(b"INPUTS")
    for name, nid in inputs:
        z(name)
        z(nid)
        z("input")
    h.update(b"OUTPUTS")
    z("output")
    z(output)
    z("output")
    return h.hexdigest()


def lin(i, o):
    return [("weight", [o, i]), ("bias", [o])]


def ln(n):
    return [("weight", [n]), ("bias", [n])]


def chain(*ids):
    return [(a, "output", b, "input") for a, b in zip(ids, ids[1:])]


def small_graph():
    """[Linear(4,4) -> LayerNorm(4)], its hash by the recipe."""
    g = FlowBuilder.from_(Linear(4, 4)).through(LayerNorm(4)).build()
    expect = recipe_hash(
        [("linear_1", "linear", lin(4, 4), [], None), ("layernorm_2", "layernorm", ln(4), [], None)],
        chain("linear_1", "layernorm_2"),
        [],
        [("input", "linear_1")],
        "layernorm_2",
    )
    assert g.structural_hash() == expect
    return g, expect


def test_hash_split_merge_tag_group():
    g = (
        FlowBuilder.from_(Linear(4, 4))
        .split([Linear(4, 4), GELU()])
        .tag_group("br")
        .merge(MergeOp.MEAN)
        .through(Linear(4, 2))
        .build()
    )
    expect = recipe_hash(
        [
            ("linear_1", "linear", lin(4, 4), [], None),
            ("linear_2", "linear", lin(4, 4), [], None),
            ("gelu_3", "gelu", [], [], None),
            ("merge_4", None, [], [], None),
            ("linear_5", "linear", lin(4, 2), [], None),
        ],
        [
            ("linear_1", "output", "linear_2", "input"),
            ("linear_1", "output", "gelu_3", "input"),
            ("linear_2", "output", "merge_4", "input_0"),
            ("gelu_3", "output", "merge_4", "input_1"),
            ("merge_4", "output", "linear_5", "input"),
        ],
        [("br_0", 1), ("br_1", 2)],
        [("input", "linear_1")],
        "linear_5",
    )
    assert g.structural_hash() == expect


def test_hash_forward_ref_backward_ref_and_extra_input():
    g = (
        FlowBuilder.from_(Linear(3, 3))
        .input("aux")
        .through(StateAdd())
        .using("aux", "mem")
        .through(Linear(3, 3))
        .tag("mem")
        .build()
    )
    assert g.node_ids() == ["linear_1", "input_aux_2", "state_read_mem_4", "state_add_3", "linear_5"]
    expect = recipe_hash(
        [
            ("linear_1", "linear", lin(3, 3), [], None),
            ("input_aux_2", None, [], [], None),
            ("state_read_mem_4", None, [], [], None),
            ("state_add_3", "state_add", [], [], None),
            ("linear_5", "linear", lin(3, 3), [], None),
        ],
        [
            ("linear_1", "output", "state_add_3", "input"),
            ("input_aux_2", "output", "state_add_3", "ref_aux"),
            ("state_read_mem_4", "output", "state_add_3", "ref_mem"),
            ("state_add_3", "output", "linear_5", "input"),
        ],
        [("aux", 1), ("mem", 4)],
        [("input", "linear_1"), ("aux", "input_aux_2")],
        "linear_5",
    )
    assert g.structural_hash() == expect


def test_hash_loops():
    body, _ = small_graph()
    g = (
        FlowBuilder.from_(Linear(4, 4))
        .loop_body(body)
        .for_n(3)
        .loop_body(Linear(4, 4))
        .while_cond(ThresholdHalt(5.0), 4)
        .loop_body(Linear(4, 4))
        .until_cond(LearnedHalt(4), 3)
        .build()
    )
    # loop composites hash the name "module", their body's (and condition's)
    # raw parameter names, and no nested hash
    expect = recipe_hash(
        [
            ("linear_1", "linear", lin(4, 4), [], None),
            ("loop_2", "module", lin(4, 4) + ln(4), [], None),
            ("loop_3", "module", lin(4, 4), [], None),
            ("loop_4", "module", lin(4, 4) + lin(4, 1), [], None),
        ],
        chain("linear_1", "loop_2", "loop_3", "loop_4"),
        [],
        [("input", "linear_1")],
        "loop_4",
    )
    assert g.structural_hash() == expect


def test_hash_gate_and_switch_with_nested_graphs_and_repeated_names():
    expert, _ = small_graph()
    branch, _ = small_graph()
    g = (
        FlowBuilder.from_(Linear(4, 4))
        .gate(SoftmaxRouter(4, 2), [expert, Linear(4, 4)])
        .switch(FixedSelector(1), [Linear(4, 4), branch])
        .build()
    )
    expect = recipe_hash(
        [
            ("linear_1", "linear", lin(4, 4), [], None),
            ("gate_2", "module", lin(4, 2) + lin(4, 4) + ln(4) + lin(4, 4), [], None),
            ("switch_3", "module", lin(4, 4) + lin(4, 4) + ln(4), [], None),
        ],
        chain("linear_1", "gate_2", "switch_3"),
        [],
        [("input", "linear_1")],
        "switch_3",
    )
    assert g.structural_hash() == expect
    # checkpoint names still suffix the repeats (floDl's naming rule)
    assert [n for n, _ in g.named_parameters()][2:6] == [
        "gate_2/weight_0",
        "gate_2/bias_0",
        "gate_2/weight_1",
        "gate_2/bias_1",
    ]


def test_hash_gate_with_one_module_in_two_slots_counts_it_once():
    shared = Linear(4, 4)
    g = FlowBuilder.from_(Linear(4, 4)).gate(SoftmaxRouter(4, 2), [shared, shared]).build()
    expect = recipe_hash(
        [
            ("linear_1", "linear", lin(4, 4), [], None),
            ("gate_2", "module", lin(4, 2) + lin(4, 4), [], None),
        ],
        chain("linear_1", "gate_2"),
        [],
        [("input", "linear_1")],
        "gate_2",
    )
    assert g.structural_hash() == expect
    assert len(g.parameters()) == 6


def test_hash_map_variants_fold_a_graph_body():
    body, body_hash = small_graph()
    g = (
        FlowBuilder.from_(Linear(4, 4))
        .tag("src")
        .map(body)
        .each()
        .map(Linear(4, 4))
        .batched()
        .each()
        .map(GELU())
        .over("src")
        .map(Linear(2, 2))
        .slices(2)
        .build()
    )
    # a map node hashes its body's name and parameters, and a graph body's hash
    expect = recipe_hash(
        [
            ("linear_1", "linear", lin(4, 4), [], None),
            ("map_2", "graph", lin(4, 4) + ln(4), [], body_hash),
            ("map_4", "gelu", [], [], None),
            ("map_3", "linear", lin(4, 4), [], None),
            ("map_5", "linear", lin(2, 2), [], None),
        ],
        [
            ("linear_1", "output", "map_2", "input"),
            ("map_2", "output", "map_3", "input"),
            ("linear_1", "output", "map_4", "input"),
            ("map_4", "output", "map_5", "input"),
        ],
        [("src", 0)],
        [("input", "linear_1")],
        "map_5",
    )
    assert g.node_ids() == ["linear_1", "map_2", "map_4", "map_3", "map_5"]
    assert g.structural_hash() == expect


def test_hash_fork_also_with_buffers_and_tags():
    g = (
        FlowBuilder.from_(Linear(4, 4))
        .fork(Linear(4, 2))
        .tag("side")
        .also_with(Linear(4, 4), BatchNorm(4))
        .through(Linear(4, 4))
        .tag("out")
        .build()
    )
    expect = recipe_hash(
        [
            ("linear_1", "linear", lin(4, 4), [], None),
            ("linear_2", "linear", lin(4, 2), [], None),
            ("linear_3", "linear", lin(4, 4), [], None),
            ("batchnorm_4", "batchnorm", ln(4), [("running_mean", [4]), ("running_var", [4])], None),
            ("add_5", None, [], [], None),
            ("linear_6", "linear", lin(4, 4), [], None),
        ],
        [
            ("linear_1", "output", "linear_2", "input"),
            ("linear_1", "output", "linear_3", "input"),
            ("linear_1", "output", "batchnorm_4", "input"),
            ("linear_3", "output", "add_5", "input_0"),
            ("batchnorm_4", "output", "add_5", "input_1"),
            ("add_5", "output", "linear_6", "input"),
        ],
        [("side", 1), ("out", 5)],
        [("input", "linear_1")],
        "linear_6",
    )
    assert g.structural_hash() == expect


def test_hash_recipe_reproduces_the_flodl_fixtures():
    """The recipe itself, checked on floDl's own hashes (nested graphs with
    repeated raw names, and a gate)."""
    inner = recipe_hash(
        [
            ("linear_1", "linear", lin(8, 8), [], None),
            ("gelu_2", "gelu", [], [], None),
            ("layernorm_3", "layernorm", ln(8), [], None),
        ],
        chain("linear_1", "gelu_2", "layernorm_3"),
        [],
        [("input", "linear_1")],
        "layernorm_3",
    )
    nodes = [("linear_1", "linear", lin(8, 8), [], None)]
    edges = []
    prev = "linear_1"
    for k in range(3):
        gid, aid = f"graph_{2 + 2 * k}", f"add_{3 + 2 * k}"
        nodes += [(gid, "graph", lin(8, 8) + ln(8), [], inner), (aid, None, [], [], None)]
        edges += [
            (prev, "output", gid, "input"),
            (prev, "output", aid, "input_0"),
            (gid, "output", aid, "input_1"),
        ]
        prev = aid
    nodes.append(("linear_8", "linear", lin(8, 8), [], None))
    edges.append((prev, "output", "linear_8", "input"))
    tower = recipe_hash(nodes, edges, [], [("input", "linear_1")], "linear_8")
    assert tower == FACTS["c_residual_tower"]["structural_hash"]
    gate_hash = recipe_hash(
        [
            ("linear_1", "linear", lin(8, 8), [], None),
            ("gate_2", "module", lin(8, 2) + lin(8, 8) + lin(8, 8), [], None),
        ],
        chain("linear_1", "gate_2"),
        [],
        [("input", "linear_1")],
        "gate_2",
    )
    assert gate_hash == FACTS["f1_gate"]["structural_hash"]


# ------------------------------------------------ init of every floDl layer


def flodl_uniform(shape, bound):
    """floDl's uniform draw: rand * 2b - b (f32 rand, f64 scalars)."""
    return torch.rand(shape) * (2 * bound) + (-bound)


def kaiming_bound(fan_in):
    gain = (2.0 / (1.0 + 5.0)) ** 0.5  # a = sqrt(5)
    return 3.0**0.5 * (gain / fan_in**0.5)


def cell(i, h, gates):
    b = 1 / h**0.5
    return [flodl_uniform(s, b) for s in ([gates * h, i], [gates * h, h], [gates * h], [gates * h])]


def xavier(e):
    return flodl_uniform([e, e], (6.0 / (e + e)) ** 0.5)


LAYERS = [
    (lambda: Linear(5, 3), lambda: [flodl_uniform([3, 5], kaiming_bound(5)), flodl_uniform([3], 1 / 5**0.5)]),
    (
        lambda: ft.nn.Conv2d(4, 6, 3, groups=2),
        lambda: [flodl_uniform([6, 2, 3, 3], kaiming_bound(18)), flodl_uniform([6], 1 / 18**0.5)],
    ),
    (
        lambda: ft.nn.Conv1d(3, 2, 4),
        lambda: [flodl_uniform([2, 3, 4], kaiming_bound(12)), flodl_uniform([2], 1 / 12**0.5)],
    ),
    (
        lambda: ft.nn.ConvTranspose2d(4, 2, 3),
        lambda: [flodl_uniform([4, 2, 3, 3], kaiming_bound(36)), flodl_uniform([2], 1 / 36**0.5)],
    ),
    (lambda: LayerNorm(6), lambda: [torch.ones(6), torch.zeros(6)]),
    (lambda: ft.nn.Embedding(7, 3), lambda: [torch.randn(7, 3)]),
    (lambda: ft.nn.GRUCell(3, 4), lambda: cell(3, 4, 3)),
    (lambda: ft.nn.LSTMCell(3, 4), lambda: cell(3, 4, 4)),
    (lambda: ft.nn.GRU(3, 4, 2), lambda: cell(3, 4, 3) + cell(4, 4, 3)),
    (lambda: ft.nn.LSTM(3, 4, 2), lambda: cell(3, 4, 4) + cell(4, 4, 4)),
    (
        # floDl draws q, k, v, out (xavier each); torch's packed layout holds q, k, v in in_proj_weight.
        lambda: ft.nn.MultiheadAttention(8, 2),
        lambda: (lambda q, k, v, o: [torch.cat([q, k, v]), torch.zeros(24), o, torch.zeros(8)])(
            *(xavier(8) for _ in range(4))
        ),
    ),
    (
        lambda: ft.nn.Bilinear(3, 4, 2),
        lambda: [flodl_uniform([2, 3, 4], 1 / 3**0.5), flodl_uniform([2], 1 / 3**0.5)],
    ),
]


@pytest.mark.parametrize("make,expected", LAYERS)
def test_layer_init_follows_flodl_bit_for_bit(make, expected):
    """floDl's draw order and arithmetic, replayed with torch's generator."""
    ft.manual_seed(42)
    ours = make().parameters()
    torch.manual_seed(42)
    ref = expected()
    assert len(ours) == len(ref)
    for a, b in zip(ours, ref, strict=True):
        assert a.shape == b.shape
        assert f32_bits(a) == f32_bits(b)


# ------------------------------------------------ MultiheadAttention: torch's layout, floDl's files

MHA_FLODL = [f"{p}.{w}" for p in ("q_proj", "k_proj", "v_proj", "out_proj") for w in ("weight", "bias")]


def read_fdl(path):
    """(hash hex, [(name, shape, f32 tensor)]) of a plain .fdl file, parsed by floDl's layout."""
    raw = pathlib.Path(path).read_bytes()
    assert raw[:4] == b"FDLC" and struct.unpack_from("<I", raw, 4)[0] == 2
    digest, (count,), at = raw[8:40].hex(), struct.unpack_from("<I", raw, 40), 44
    entries = []
    for _ in range(count):
        (n,) = struct.unpack_from("<I", raw, at)
        name = raw[at + 4 : at + 4 + n].decode()
        at += 4 + n
        (ndim,) = struct.unpack_from("<I", raw, at)
        dims = list(struct.unpack_from(f"<{ndim}q", raw, at + 4))
        at += 4 + 8 * ndim
        tag, nbytes = struct.unpack_from("<BQ", raw, at)
        assert tag == 3  # f32
        data = torch.frombuffer(bytearray(raw[at + 9 : at + 9 + nbytes]), dtype=torch.float32).reshape(dims)
        entries.append((name, dims, data))
        at += 9 + nbytes
    assert at == len(raw)
    return digest, entries


def test_mha_hash_and_file_use_flodls_split_names_and_bytes(tmp_path):
    """Parameters are torch's packed in_proj_weight; the hash and the .fdl file
    see floDl's q/k/v/out blocks (names, shapes, order, the init's bytes)."""
    ft.manual_seed(42)
    g = FlowBuilder.from_(ft.nn.MultiheadAttention(8, 2)).build()
    torch.manual_seed(42)
    q, k, v, o = (xavier(8) for _ in range(4))
    blocks = {"q_proj": q, "k_proj": k, "v_proj": v, "out_proj": o}
    shapes = [(n, [8, 8] if n.endswith("weight") else [8]) for n in MHA_FLODL]
    expect = recipe_hash(
        [("multihead_attention_1", "multihead_attention", shapes, [], None)],
        [],
        [],
        [("input", "multihead_attention_1")],
        "multihead_attention_1",
    )
    assert g.structural_hash() == expect
    assert [n for n, _ in g.named_parameters()] == [
        "multihead_attention_1/" + n
        for n in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")
    ]
    path = tmp_path / "mha.fdl"
    g.save_checkpoint(path)
    digest, entries = read_fdl(path)
    assert digest == expect
    assert [e[0] for e in entries] == ["multihead_attention_1/" + n for n in MHA_FLODL]
    for name, dims, data in entries:
        proj, what = name.split("/")[1].split(".")
        want = blocks[proj] if what == "weight" else torch.zeros(8)
        assert dims == list(want.shape) and f32_bits(data) == f32_bits(want), name


def test_mha_fdl_file_loads_back_into_the_packed_parameters(tmp_path):
    g = FlowBuilder.from_(ft.nn.MultiheadAttention(8, 2)).through(Linear(8, 3)).build()
    with torch.no_grad():
        for p in g.parameters():
            p.copy_(torch.randn_like(p))
    saved = {n: p.detach().clone() for n, p in g.named_parameters()}
    path = tmp_path / "mha.fdl"
    g.save_checkpoint(path)
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
    report = g.load_checkpoint(path)
    assert report.loaded == ["multihead_attention_1/" + n for n in MHA_FLODL] + [
        "linear_2/weight",
        "linear_2/bias",
    ]
    assert report.missing == [] and report.skipped == []
    for n, p in g.named_parameters():
        assert torch.equal(p, saved[n]), n
    # A file with floDl's names written by hand (e.g. by floDl) loads the same way.
    _, entries = read_fdl(path)
    packed = torch.cat(
        [e[2] for e in entries if e[0].split("/")[1] in ("q_proj.weight", "k_proj.weight", "v_proj.weight")]
    )
    assert torch.equal(packed, saved["multihead_attention_1/in_proj_weight"])
