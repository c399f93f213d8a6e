"""Checkpoints: floDl's .fdl format (byte layout, load rules, migration) and
safetensors (crossing to and from the `safetensors` package); atomic writes
and validate-before-write loads."""

import os
import struct

import pytest
import torch

import ferrotorch as ft
from ferrotorch import FlowBuilder
from ferrotorch.checkpoint import (
    LoadReport,
    MigrateReport,
    checkpoint_keys,
    checkpoint_version,
    load_checkpoint,
    load_safetensors,
    migrate_checkpoint,
    safetensors_metadata,
    save_checkpoint,
    save_safetensors,
)
from ferrotorch.nn import GELU, BatchNorm, Linear, ReLU

safetensors = pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

TAGS = {
    torch.float16: 1,
    torch.bfloat16: 2,
    torch.float32: 3,
    torch.float64: 4,
    torch.int32: 5,
    torch.int64: 6,
}


def bits(t):
    """The raw bytes of a tensor, for bit-exact comparison (NaN payloads, -0.0)."""
    return t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).tolist()


def snapshot(g):
    return [(n, t.detach().clone()) for n, t in g.named_parameters() + g.named_buffers()]


def assert_same(g, snap):
    now = g.named_parameters() + g.named_buffers()
    assert [n for n, _ in now] == [n for n, _ in snap]
    for (n, a), (_, b) in zip(now, snap):
        assert bits(a) == bits(b), n


def mlp(act=GELU):
    return FlowBuilder.from_(Linear(3, 4)).through(act()).through(Linear(4, 2)).build()


def bn_model():
    return FlowBuilder.from_(Linear(3, 4)).through(BatchNorm(4)).tag("bn").through(Linear(4, 2)).build()


def perturb(g):
    with torch.no_grad():
        for _, t in g.named_parameters() + g.named_buffers():
            t.copy_(torch.randn_like(t.float()).to(t.dtype))


def entries(buf):
    """Parses a .fdl file with struct, independently of the implementation."""
    magic, version = buf[:4], struct.unpack_from("<I", buf, 4)[0]
    hash_ = buf[8:40]
    (count,) = struct.unpack_from("<I", buf, 40)
    pos, out = 44, []
    for _ in range(count):
        (nl,) = struct.unpack_from("<I", buf, pos)
        name = buf[pos + 4 : pos + 4 + nl].decode()
        pos += 4 + nl
        (ndim,) = struct.unpack_from("<I", buf, pos)
        dims = list(struct.unpack_from(f"<{ndim}q", buf, pos + 4))
        pos += 4 + 8 * ndim
        tag = buf[pos]
        (nbytes,) = struct.unpack_from("<Q", buf, pos + 1)
        pos += 9
        out.append((name, dims, tag, buf[pos : pos + nbytes]))
        pos += nbytes
    assert pos == len(buf)
    return magic, version, hash_, count, out


def entry_bytes(name, dims, tag, data):
    b = name.encode()
    return (
        struct.pack("<I", len(b))
        + b
        + struct.pack(f"<I{len(dims)}q", len(dims), *dims)
        + bytes([tag])
        + struct.pack("<Q", len(data))
        + data
    )


def fdl_file(version, hash_, ents):
    return b"FDLC" + struct.pack("<I", version) + hash_ + struct.pack("<I", len(ents)) + b"".join(ents)


# --- byte layout and round trips -------------------------------------------------------


def test_byte_layout_matches_flodl(tmp_path):
    g = bn_model()
    perturb(g)
    p = tmp_path / "m.fdl"
    g.save_checkpoint(p)
    magic, version, hash_, count, ents = entries(p.read_bytes())
    assert magic == b"FDLC" and version == 2 == ft.checkpoint.FORMAT_VERSION
    assert hash_ == bytes.fromhex(g.structural_hash())
    named = g.named_parameters() + g.named_buffers()  # params first, then buffers
    assert count == len(named) == 8
    assert [e[0] for e in ents] == [n for n, _ in named]
    assert ents[-1][0] == "bn/running_var"
    name, dims, tag, data = ents[0]
    w = g.named_parameters()[0][1]
    assert (name, dims, tag) == ("linear_1/weight", [4, 3], 3)
    assert data == struct.pack("<12f", *w.detach().reshape(-1).tolist())
    assert checkpoint_keys(p) == [n for n, _ in named]
    assert checkpoint_version(p) == 2


@pytest.mark.parametrize("suffix", [".fdl", ".fdl.gz"])
def test_graph_round_trip_bit_equal(tmp_path, suffix):
    g = bn_model()
    perturb(g)
    p = tmp_path / f"m{suffix}"
    g.save_checkpoint(str(p))
    if suffix.endswith(".gz"):
        import gzip

        raw = gzip.decompress(p.read_bytes())
        assert raw[:4] == b"FDLC"
        assert entries(raw)[3] == 8
    else:
        assert p.read_bytes()[:4] == b"FDLC"
    h = bn_model()
    params_before = h.parameters()
    report = h.load_checkpoint(p)
    assert isinstance(report, LoadReport)
    assert report.loaded == [n for n, _ in g.named_parameters() + g.named_buffers()]
    assert report.skipped == [] and report.missing == []
    loaded, skipped, missing = report
    assert loaded == report.loaded
    assert_same(h, snapshot(g))
    # in place: tensors held before the load (an optimizer's) see the values
    for a, (_, b) in zip(params_before, g.named_parameters()):
        assert torch.equal(a, b)
    assert checkpoint_keys(p) == report.loaded


@pytest.mark.parametrize("suffix", [".fdl", ".fdl.gz"])
def test_dict_round_trip_all_dtypes_bit_equal(tmp_path, suffix):
    special = torch.tensor([float("nan"), -0.0, float("inf"), -float("inf"), 1e-30, 3.14159])
    d = {
        "f32": torch.cat([special, torch.randn(5)]),
        "f64": torch.randn(3, 4, dtype=torch.float64),
        "f16": torch.cat([special, torch.randn(4)]).half(),
        "bf16": torch.randn(2, 3, 2).bfloat16(),
        "i32": torch.randint(-(2**31), 2**31 - 1, (7,), dtype=torch.int32),
        "i64": torch.tensor([-(2**63), 2**63 - 1, 0], dtype=torch.int64),
        "scalar": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 3),
        "strided": torch.arange(12.0).reshape(3, 4).t(),  # non-contiguous
    }
    p = tmp_path / f"d{suffix}"
    save_checkpoint(d, p)
    raw = p.read_bytes()
    if suffix.endswith(".gz"):
        import gzip

        raw = gzip.decompress(raw)
    _, _, hash_, count, ents = entries(raw)
    assert hash_ == bytes(32) and count == len(d)
    assert [(n, dims, tag) for n, dims, tag, _ in ents] == [
        (k, list(v.shape), TAGS[v.dtype]) for k, v in d.items()
    ]
    targets = {k: torch.zeros_like(v) for k, v in d.items()}
    r = load_checkpoint(p, targets)
    assert r.loaded == list(d) and r.skipped == [] and r.missing == []
    for k in d:
        assert targets[k].dtype == d[k].dtype and targets[k].shape == d[k].shape
        assert bits(targets[k]) == bits(d[k]), k


def test_save_rejects_dtypes_fdl_cannot_hold(tmp_path):
    p = tmp_path / "x.fdl"
    with pytest.raises(ft.DTypeError, match="'mask'.*bool"):
        save_checkpoint({"w": torch.ones(2), "mask": torch.ones(2, dtype=torch.bool)}, p)
    assert not p.exists() and os.listdir(tmp_path) == []
    with pytest.raises(ft.InputTypeError):
        save_checkpoint(42, p)


def test_torch_module_as_named_tensors(tmp_path):
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    save_checkpoint(a, tmp_path / "t.fdl")
    assert checkpoint_keys(tmp_path / "t.fdl") == ["weight", "bias"]
    r = load_checkpoint(tmp_path / "t.fdl", b)
    assert r.loaded == ["weight", "bias"]
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


# --- load rules --------------------------------------------------------------------------


def test_hash_mismatch_is_an_error_and_changes_nothing(tmp_path):
    g, h = mlp(GELU), mlp(ReLU)  # same parameter names, different structure
    assert [n for n, _ in g.named_parameters()] == [n for n, _ in h.named_parameters()]
    assert g.structural_hash() != h.structural_hash()
    g.save_checkpoint(tmp_path / "g.fdl")
    before = snapshot(h)
    with pytest.raises(ft.CheckpointError, match="architecture mismatch") as e:
        h.load_checkpoint(tmp_path / "g.fdl")
    msg = str(e.value)
    assert "g.fdl" in msg and g.structural_hash()[:8] in msg and h.structural_hash()[:8] in msg
    assert_same(h, before)
    # the hash check is off for partial loads by name
    assert len(h.load_checkpoint(tmp_path / "g.fdl", strict_hash=False).loaded) == 4
    assert len(load_checkpoint(tmp_path / "g.fdl", h).loaded) == 4
    assert_same(h, snapshot(g))
    with pytest.raises(ft.CheckpointError, match="architecture mismatch"):
        load_checkpoint(tmp_path / "g.fdl", mlp(ReLU), strict_hash=True)


def test_zero_hash_skips_validation(tmp_path):
    g, h = mlp(GELU), mlp(ReLU)
    save_checkpoint(dict(g.named_parameters()), tmp_path / "z.fdl")  # zero hash
    assert h.load_checkpoint(tmp_path / "z.fdl").loaded == [n for n, _ in h.named_parameters()]
    assert_same(h, snapshot(g))


def test_shape_mismatch_names_entry_and_loads_nothing(tmp_path):
    g = mlp()
    names = [n for n, _ in g.named_parameters()]
    # a good entry first, then a bad one: the good one must not be applied either
    save_checkpoint({names[1]: torch.full((4,), 7.0), names[2]: torch.zeros(5, 5)}, tmp_path / "s.fdl")
    before = snapshot(g)
    with pytest.raises(ft.CheckpointError) as e:
        load_checkpoint(tmp_path / "s.fdl", g)
    msg = str(e.value)
    assert names[2] in msg and "[5, 5]" in msg and "[2, 4]" in msg and "s.fdl" in msg
    assert_same(g, before)


def test_dtype_auto_cast(tmp_path):
    g = mlp()
    perturb(g)
    g.save_checkpoint(tmp_path / "f32.fdl")
    h = mlp().double()
    r = h.load_checkpoint(tmp_path / "f32.fdl")
    assert len(r.loaded) == 4
    for (n, a), (_, b) in zip(h.named_parameters(), g.named_parameters()):
        assert a.dtype == torch.float64
        assert torch.equal(a, b.double()), n
    # and the other way: an f64 dict into f32 tensors rounds like torch
    src = torch.randn(4, dtype=torch.float64)
    save_checkpoint({"x": src}, tmp_path / "f64.fdl")
    dst = {"x": torch.zeros(4)}
    load_checkpoint(tmp_path / "f64.fdl", dst)
    assert torch.equal(dst["x"], src.float())


def test_partial_load_report_flodl(tmp_path):
    # floDl test_named_partial_load: 3 saved, a 4th model name is missing
    shapes = [(4, 8), (8, 4), (4, 2)]
    src = {f"l{i}/weight": torch.randn(*s) for i, s in enumerate(shapes)}
    save_checkpoint(src, tmp_path / "p.fdl")
    dst = {f"l{i}/weight": torch.zeros(*s) for i, s in enumerate(shapes)}
    extra = torch.randn(2, 1)
    dst["extra/weight"] = extra
    extra_before = extra.clone()
    r = load_checkpoint(tmp_path / "p.fdl", dst)
    assert len(r.loaded) == 3 and r.missing == ["extra/weight"] and r.skipped == []
    assert torch.equal(dst["extra/weight"], extra_before)
    for k, v in src.items():
        assert torch.equal(dst[k], v)
    # skipped: file entries the model lacks
    r = load_checkpoint(tmp_path / "p.fdl", {"l1/weight": torch.zeros(8, 4)})
    assert r == LoadReport(["l1/weight"], ["l0/weight", "l2/weight"], [])


def test_partial_load_into_graph_by_name(tmp_path):
    g = FlowBuilder.from_(Linear(3, 4)).tag("encoder").through(GELU()).through(Linear(4, 2)).build()
    enc = dict(g.named_parameters_at("encoder"))
    assert list(enc) == ["encoder/weight", "encoder/bias"]
    pre = {k: torch.randn_like(v) for k, v in enc.items()}
    pre["head/weight"] = torch.randn(9)
    save_checkpoint(pre, tmp_path / "pre.fdl")
    other_before = [t.clone() for n, t in g.named_parameters() if not n.startswith("encoder")]
    r = load_checkpoint(tmp_path / "pre.fdl", g)
    assert r.loaded == ["encoder/weight", "encoder/bias"]
    assert r.skipped == ["head/weight"] and r.missing == ["linear_3/weight", "linear_3/bias"]
    assert torch.equal(g.named_parameters()[0][1], pre["encoder/weight"])
    others = [t for n, t in g.named_parameters() if not n.startswith("encoder")]
    assert all(torch.equal(a, b) for a, b in zip(others, other_before))


def _tree():
    enc = FlowBuilder.from_(Linear(4, 4)).tag("hidden").through(GELU()).label("encoder").build()
    dec = FlowBuilder.from_(Linear(4, 2)).tag("out").label("decoder").build()
    return FlowBuilder.from_(Linear(4, 4)).through(enc).through(dec).build()


def test_subgraph_checkpoint(tmp_path):
    g = _tree()
    perturb(g)
    g.subgraph("encoder").save_checkpoint(tmp_path / "enc.fdl")
    g.subgraph("decoder").save_checkpoint(tmp_path / "dec.fdl")
    h = _tree()
    outer_before = [t.clone() for t in h.parameters()[:2]]
    dec_before = snapshot(h.subgraph("decoder"))
    r = h.load_subgraph_checkpoint("encoder", tmp_path / "enc.fdl")
    assert r.loaded == ["hidden/weight", "hidden/bias"] and r.missing == [] and r.skipped == []
    assert_same(h.subgraph("encoder"), snapshot(g.subgraph("encoder")))
    assert all(torch.equal(a, b) for a, b in zip(h.parameters()[:2], outer_before))
    assert_same(h.subgraph("decoder"), dec_before)
    # validated against the child's hash
    with pytest.raises(ft.CheckpointError, match="architecture mismatch"):
        h.load_subgraph_checkpoint("decoder", tmp_path / "enc.fdl")
    assert_same(h.subgraph("decoder"), dec_before)
    with pytest.raises(ft.TagError, match="nope"):
        h.load_subgraph_checkpoint("nope", tmp_path / "enc.fdl")


def test_v1_file_is_read(tmp_path):
    w, b = torch.randn(2, 3), torch.randn(2)
    buf = fdl_file(
        1,
        bytes(32),
        [
            entry_bytes("lin/weight", [2, 3], 3, w.numpy().tobytes()),
            entry_bytes("lin/bias", [2], 4, b.double().numpy().tobytes()),
        ],
    )
    (tmp_path / "v1.fdl").write_bytes(buf)
    assert checkpoint_version(tmp_path / "v1.fdl") == 1
    assert checkpoint_keys(tmp_path / "v1.fdl") == ["lin/weight", "lin/bias"]
    dst = {"lin/weight": torch.zeros(2, 3), "lin/bias": torch.zeros(2)}
    r = load_checkpoint(tmp_path / "v1.fdl", dst)
    assert r.loaded == ["lin/weight", "lin/bias"]
    assert torch.equal(dst["lin/weight"], w) and torch.equal(dst["lin/bias"], b)


@pytest.mark.parametrize("version", [0, 3, 0xFFFFFFFF])
def test_unsupported_version(tmp_path, version):
    (tmp_path / "v.fdl").write_bytes(fdl_file(version, bytes(32), []))
    with pytest.raises(ft.CheckpointError, match=f"unsupported checkpoint version {version}"):
        load_checkpoint(tmp_path / "v.fdl", {})
    assert checkpoint_version(tmp_path / "v.fdl") == version  # peeking reports it


def test_bad_magic(tmp_path):
    (tmp_path / "m.fdl").write_bytes(b"PK\x03\x04" + bytes(60))
    with pytest.raises(ft.CheckpointError, match="bad magic"):
        checkpoint_version(tmp_path / "m.fdl")
    with pytest.raises(ft.CheckpointError, match="m.fdl.*bad magic"):
        load_checkpoint(tmp_path / "m.fdl", {})


def test_unknown_dtype_tag(tmp_path):
    buf = fdl_file(2, bytes(32), [entry_bytes("x", [2], 7, bytes(8))])
    (tmp_path / "u.fdl").write_bytes(buf)
    dst = {"x": torch.ones(2)}
    with pytest.raises(ft.CheckpointError, match="'x'.*unknown dtype tag 7"):
        load_checkpoint(tmp_path / "u.fdl", dst)
    assert torch.equal(dst["x"], torch.ones(2))


def test_byte_count_and_trailing_bytes_are_checked(tmp_path):
    bad = fdl_file(2, bytes(32), [entry_bytes("x", [3], 3, bytes(8))])  # 3 f32 need 12 bytes
    (tmp_path / "b.fdl").write_bytes(bad)
    with pytest.raises(ft.CheckpointError, match="'x'.*byte count 8"):
        checkpoint_keys(tmp_path / "b.fdl")
    good = fdl_file(2, bytes(32), [entry_bytes("x", [2], 3, bytes(8))])
    (tmp_path / "t.fdl").write_bytes(good + b"\0")
    with pytest.raises(ft.CheckpointError, match="1 unexpected bytes"):
        checkpoint_keys(tmp_path / "t.fdl")
    dup = fdl_file(2, bytes(32), [entry_bytes("x", [2], 3, bytes(8))] * 2)
    (tmp_path / "d.fdl").write_bytes(dup)
    with pytest.raises(ft.CheckpointError, match="'x' appears twice"):
        checkpoint_keys(tmp_path / "d.fdl")


@pytest.mark.parametrize("suffix", [".fdl", ".fdl.gz"])
def test_every_truncation_is_a_checkpoint_error(tmp_path, suffix):
    g = bn_model()
    g.save_checkpoint(tmp_path / f"full{suffix}")
    raw = (tmp_path / f"full{suffix}").read_bytes()
    perturb(g)
    before = snapshot(g)
    cut = tmp_path / f"cut{suffix}"
    for k in range(len(raw)):
        cut.write_bytes(raw[:k])
        with pytest.raises(ft.CheckpointError, match="cut"):
            g.load_checkpoint(cut)
        with pytest.raises(ft.CheckpointError):
            load_checkpoint(cut, g)
    assert_same(g, before)
    cut.write_bytes(raw)
    assert len(g.load_checkpoint(cut).loaded) == 8


def test_flipped_header_bytes(tmp_path):
    g = bn_model()
    g.save_checkpoint(tmp_path / "full.fdl")
    raw = (tmp_path / "full.fdl").read_bytes()
    perturb(g)
    before = snapshot(g)
    bad = tmp_path / "bad.fdl"
    # file header: magic, version, hash, count
    for i in range(44):
        for mask in (0x01, 0x80, 0xFF):
            b = bytearray(raw)
            b[i] ^= mask
            bad.write_bytes(bytes(b))
            with pytest.raises(ft.CheckpointError, match="bad.fdl"):
                g.load_checkpoint(bad)
    assert_same(g, before)
    # any byte after it: a clear error or a load, never another exception
    errors = 0
    for i in range(44, len(raw)):
        b = bytearray(raw)
        b[i] ^= 0xFF
        bad.write_bytes(bytes(b))
        before = snapshot(g)
        try:
            g.load_checkpoint(bad)
        except ft.CheckpointError:
            errors += 1
            assert_same(g, before)
    assert errors > 8 * 10  # every entry's header bytes are guarded


def test_missing_file_and_unwritable_path_are_file_errors(tmp_path):
    g = mlp()
    with pytest.raises(ft.FileError, match="nope.fdl") as e:
        g.load_checkpoint(tmp_path / "nope.fdl")
    assert isinstance(e.value, OSError)
    for f in (checkpoint_keys, checkpoint_version, load_safetensors):
        with pytest.raises(ft.FileError):
            f(tmp_path / "nope.fdl")
    with pytest.raises(ft.FileError, match="no_dir"):
        g.save_checkpoint(tmp_path / "no_dir" / "m.fdl")
    with pytest.raises(ft.FileError):
        save_safetensors(g, tmp_path / "no_dir" / "m.safetensors")


# --- migration ---------------------------------------------------------------------------


def test_migrate_all_renamed(tmp_path):
    # floDl test_migrate_all_renamed: untagged names -> encoder/decoder by shape
    old = FlowBuilder.from_(Linear(4, 8)).through(Linear(8, 2)).build()
    perturb(old)
    old_names = [n for n, _ in old.named_parameters()]
    old.save_checkpoint(tmp_path / "old.fdl")
    new = FlowBuilder.from_(Linear(4, 8)).tag("encoder").through(Linear(8, 2)).tag("decoder").build()
    with pytest.raises(ft.CheckpointError, match="architecture mismatch"):
        new.load_checkpoint(tmp_path / "old.fdl")
    r = migrate_checkpoint(tmp_path / "old.fdl", tmp_path / "new.fdl", new)
    assert isinstance(r, MigrateReport)
    assert r.unchanged == [] and r.dropped == [] and r.missing == []
    assert r.remapped == list(
        zip(old_names, ["encoder/weight", "encoder/bias", "decoder/weight", "decoder/bias"])
    )
    assert r.is_complete()
    assert "remapped (4):" in str(r) and f"{old_names[0]} -> encoder/weight" in str(r)
    _, version, hash_, _, ents = entries((tmp_path / "new.fdl").read_bytes())
    assert version == 2 and hash_ == bytes(32)
    assert [e[0] for e in ents] == [n for n, _ in new.named_parameters()]
    assert new.load_checkpoint(tmp_path / "new.fdl").loaded == [n for n, _ in new.named_parameters()]
    for (_, a), (_, b) in zip(new.named_parameters(), old.named_parameters()):
        assert bits(a) == bits(b)


def test_migrate_partial_shape_and_dtype(tmp_path):
    src = {
        "a": torch.randn(3),
        "b": torch.randn(3, dtype=torch.float64),
        "keep": torch.randn(2, 2),
        "extra": torch.randn(7),
    }
    save_checkpoint(src, tmp_path / "s.fdl.gz")
    model = {
        "keep": torch.zeros(2, 2),
        "x64": torch.zeros(3, dtype=torch.float64),  # takes "b" (dtype), not "a"
        "x32": torch.zeros(3),
        "y": torch.zeros(5),
    }
    r = migrate_checkpoint(tmp_path / "s.fdl.gz", tmp_path / "s.fdl.gz", model)  # in place
    assert r.unchanged == ["keep"]
    assert r.remapped == [("b", "x64"), ("a", "x32")]
    assert r.dropped == ["extra"] and r.missing == ["y"] and not r.is_complete()
    assert checkpoint_keys(tmp_path / "s.fdl.gz") == ["keep", "x64", "x32"]
    load_checkpoint(tmp_path / "s.fdl.gz", model)
    assert torch.equal(model["x64"], src["b"]) and torch.equal(model["x32"], src["a"])


# --- safetensors -------------------------------------------------------------------------

ST_DTYPES = [
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.uint8,
    torch.bool,
]


def many_dtypes():
    out = {}
    for i, dt in enumerate(ST_DTYPES):
        shape = (i % 3 + 1, 2) if i % 2 else (3,)
        if dt.is_floating_point:
            out[f"t_{dt}".replace("torch.", "")] = torch.randn(shape).to(dt)
        elif dt == torch.bool:
            out["t_bool"] = torch.rand(shape) > 0.5
        else:
            out[f"t_{dt}".replace("torch.", "")] = torch.randint(
                -100 if dt != torch.uint8 else 0, 100, shape
            ).to(dt)
    out["t_scalar"] = torch.tensor(1.5)
    out["t_empty"] = torch.zeros(0, 4)
    return out


def test_safetensors_written_here_read_by_package(tmp_path):
    d = many_dtypes()
    p = tmp_path / "ours.safetensors"
    save_safetensors(d, p, metadata={"format": "pt", "by": "ferrotorch"})
    theirs = load_file(str(p))
    assert set(theirs) == set(d)
    for k, v in d.items():
        assert theirs[k].dtype == v.dtype and theirs[k].shape == v.shape
        assert bits(theirs[k]) == bits(v), k
    with safe_open(str(p), framework="pt") as f:
        assert f.metadata() == {"format": "pt", "by": "ferrotorch"}
    assert safetensors_metadata(p) == {"format": "pt", "by": "ferrotorch"}
    (n,) = struct.unpack("<Q", p.read_bytes()[:8])
    assert n % 8 == 0


def test_safetensors_written_by_package_read_here(tmp_path):
    d = many_dtypes()
    p = tmp_path / "theirs.safetensors"
    save_file(d, str(p), metadata={"k": "v"})
    ours = load_safetensors(p)
    assert set(ours) == set(d)
    for k, v in d.items():
        assert ours[k].dtype == v.dtype and ours[k].shape == v.shape
        assert bits(ours[k]) == bits(v), k
    assert safetensors_metadata(p) == {"k": "v"}


def test_safetensors_graph_round_trip(tmp_path):
    g = bn_model()
    perturb(g)
    p = tmp_path / "g.safetensors"
    save_safetensors(g, p)
    theirs = load_file(str(p))
    assert set(theirs) == {n for n, _ in g.named_parameters() + g.named_buffers()}
    h = bn_model()
    r = load_safetensors(p, h)
    assert r.loaded == [n for n, _ in h.named_parameters() + h.named_buffers()]
    assert_same(h, snapshot(g))
    # a file from the package into a graph, with a dtype cast and a report
    sd = {k: v.double() * 2 for k, v in theirs.items() if k != "bn/running_var"}
    sd["unused"] = torch.ones(1)
    save_file(sd, str(tmp_path / "x.safetensors"))
    r = load_safetensors(tmp_path / "x.safetensors", h)
    assert r.missing == ["bn/running_var"] and r.skipped == ["unused"]
    assert torch.equal(
        dict(h.named_parameters())["linear_1/weight"], (theirs["linear_1/weight"].double() * 2).float()
    )


def test_safetensors_shape_mismatch_and_truncation(tmp_path):
    g = mlp()
    perturb(g)
    before = snapshot(g)
    bad = {n: torch.zeros(t.shape) for n, t in g.named_parameters()}
    bad["linear_3/weight"] = torch.zeros(3, 3)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ft.CheckpointError, match=r"'linear_3/weight'.*\[3, 3\].*\[2, 4\]"):
        load_safetensors(tmp_path / "bad.safetensors", g)
    assert_same(g, before)
    save_safetensors(g, tmp_path / "ok.safetensors")
    raw = (tmp_path / "ok.safetensors").read_bytes()
    cut = tmp_path / "cut.safetensors"
    for k in range(len(raw)):
        cut.write_bytes(raw[:k])
        with pytest.raises(ft.CheckpointError, match="cut.safetensors"):
            load_safetensors(cut, g)
    assert_same(g, before)
    # corrupt header JSON and offsets that leave a hole
    cut.write_bytes(struct.pack("<Q", 8) + b"{not js}")
    with pytest.raises(ft.CheckpointError, match="JSON"):
        load_safetensors(cut)
    hdr = b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}'
    cut.write_bytes(struct.pack("<Q", len(hdr)) + hdr + bytes(8))
    with pytest.raises(ft.CheckpointError, match="tile"):
        load_safetensors(cut)
    hdr = b'{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,4]}}'
    cut.write_bytes(struct.pack("<Q", len(hdr)) + hdr + bytes(4))
    with pytest.raises(ft.CheckpointError, match="unsupported dtype 'Q7'"):
        load_safetensors(cut)


def test_safetensors_save_argument_errors(tmp_path):
    with pytest.raises(ft.InputTypeError, match="metadata"):
        save_safetensors({"a": torch.ones(1)}, tmp_path / "a.safetensors", metadata={"k": 1})
    with pytest.raises(ft.DTypeError, match="'c'"):
        save_safetensors({"c": torch.ones(1, dtype=torch.complex64)}, tmp_path / "a.safetensors")
    with pytest.raises(ft.ConfigError, match="__metadata__"):
        save_safetensors({"__metadata__": torch.ones(1)}, tmp_path / "a.safetensors")
    assert os.listdir(tmp_path) == []


# --- atomic writes -----------------------------------------------------------------------


def test_failed_save_keeps_previous_file(tmp_path):
    p = tmp_path / "m.fdl"
    save_checkpoint({"w": torch.ones(3)}, p)
    before = p.read_bytes()
    with pytest.raises(ft.DTypeError):
        save_checkpoint({"w": torch.ones(3), "b": torch.ones(1, dtype=torch.bool)}, p)
    assert p.read_bytes() == before and os.listdir(tmp_path) == ["m.fdl"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_load_onto_cuda_parameters(tmp_path):
    g = mlp()
    perturb(g)
    g.save_checkpoint(tmp_path / "m.fdl")
    dst = {n: torch.zeros_like(t, device="cuda") for n, t in g.named_parameters()}
    load_checkpoint(tmp_path / "m.fdl", dst)
    for n, t in g.named_parameters():
        assert dst[n].is_cuda and torch.equal(dst[n].cpu(), t)
    save_checkpoint(dst, tmp_path / "c.fdl")
    assert (tmp_path / "c.fdl").read_bytes()[44:] == (tmp_path / "m.fdl").read_bytes()[44:]
