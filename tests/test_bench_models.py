"""The benchmark suite's models (benches/suite_models.py) and its runner
(benches/suite.py), without timing anything.

* Each of floDl's ten models, at a tiny size, is bit-equal to its torch twin
  after 20 Adam steps from the same weights: ferrotorch's Trainer with its
  Adam against torch's fused Adam (losses, every parameter, BatchNorm
  running statistics).
* At floDl's full size each model has the parameter count its architecture
  gives (FLODL_FACTS section 9), on both sides.
* One step of each bench model at its CPU size through the bench's own
  step builder, the memory subprocess, and the report writers.
"""

from __future__ import annotations

import json
import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import torch

import ferrotorch as ft

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches"))

import suite  # noqa: E402
import suite_models as sm  # noqa: E402
import suite_report  # noqa: E402

STEPS = 20


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize("name", sm.NAMES)
def test_bit_equal_to_torch_twin(name: str) -> None:
    spec = sm.SPECS[name]
    graph = sm.build_ft(name, "tiny")
    model = sm.twin(name, "tiny", graph)
    start = [p.detach().clone() for p in model.parameters()]
    trainer = ft.Trainer(graph, ft.optim.Adam(graph.parameters(), spec.lr), loss=spec.loss)
    opt = torch.optim.Adam(model.parameters(), spec.lr, fused=True)
    data = sm.batches(name, "tiny", 4)
    for i in range(STEPS):
        x, y = data[i % len(data)]
        lf = trainer.step(x, y)
        opt.zero_grad()
        loss = spec.torch_loss(model(x), y)
        loss.backward()
        opt.step()
        assert torch.equal(torch.tensor(lf), loss.detach()), f"step {i}: loss {lf!r} vs torch {loss.item()!r}"
    pairs = list(zip(graph.named_parameters(), model.named_parameters()))
    assert len(pairs) == len(start) > 0
    for (nf, pf), (nt, pt) in pairs:
        assert torch.equal(pf, pt), f"parameter {nf} (torch {nt}) differs after {STEPS} steps"
    # Not vacuous: every parameter moved.
    assert all(not torch.equal(p0, p) for p0, p in zip(start, model.parameters()))
    stats = [b for n, b in model.named_buffers() if not n.endswith("num_batches_tracked")]
    assert len(list(graph.buffers())) == len(stats)
    for bf, bt in zip(graph.buffers(), stats):
        assert torch.equal(bf, bt), "BatchNorm running statistics differ"
    if name in ("convnet", "conv_autoenc"):
        assert stats and all(not torch.equal(b, torch.zeros_like(b)) for b in stats)


@pytest.mark.parametrize("name", sm.NAMES)
def test_full_size_parameter_counts(name: str) -> None:
    assert sm.param_count(sm.build_ft(name, "full")) == sm.FULL_PARAMS[name]
    with torch.device("meta"):
        assert sm.param_count(sm.build_torch(name, "full")) == sm.FULL_PARAMS[name]


def test_full_sizes_are_flodls() -> None:
    # FLODL_FACTS section 9's (rounded) figures, where its docs and code agree.
    published = {"mlp": 16.8, "gru_seq": 1.3, "residual_tower": 14.7, "gated_routing": 2.6}
    published.update(iterative_refine=3.2, feedback_fixed=0.8, convnet=3.97, transformer=21.07)
    published.update(lstm_seq=3.81, conv_autoenc=5.52)
    for name, m in published.items():
        digits = len(str(m).split(".")[1])
        assert round(sm.FULL_PARAMS[name] / 1e6, digits) == m, name


@pytest.mark.parametrize("name", sm.NAMES)
def test_one_step_at_cpu_size(name: str) -> None:
    data = suite.device_data(name, "cpu", "cpu")
    losses = {}
    for side in ("ferrotorch", "torch_default", "torch_fused"):
        step = suite.make_step(name, "cpu", side, data)
        assert step is not None
        losses[side] = float(step(*data[0]))  # type: ignore[arg-type]
    assert all(math.isfinite(v) for v in losses.values()), losses
    # Same weights, same batch: the first losses agree.
    assert losses["ferrotorch"] == losses["torch_fused"] == losses["torch_default"], losses


def test_memory_child_reports_baseline_and_peak() -> None:
    args = suite.build_parser().parse_args(["--size", "cpu", "--memory-steps", "2", "--child-warmup", "1"])
    mem = suite.memory("convnet", "ferrotorch", args, 1)
    assert mem is not None
    assert mem["base_mib"] > 10 and mem["peak_mib"] >= mem["base_mib"]
    assert mem["delta_mib"] == pytest.approx(mem["peak_mib"] - mem["base_mib"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given without CUDA")
def test_cuda_without_a_device_exits_with_a_message(monkeypatch) -> None:
    monkeypatch.setattr(sys, "argv", ["suite.py", "--device", "cuda"])
    with pytest.raises(SystemExit, match="no CUDA device"):
        suite.main()


def fake_runs() -> list:
    models = {}
    for i, name in enumerate(("mlp", "convnet")):
        models[name] = {
            "params": 1000 + i,
            "size": "d=64",
            "us": {
                "ferrotorch": 100.0,
                "torch_default": 300.0,
                "torch_fused": 200.0,
                "compile_model": 90.0 + i,
            },
            "spread": {},
            "compile_s": {"compile_model": 1.5},
            "notes": ["a note"] if i else [],
            "memory": {
                "ferrotorch": {"base_mib": 700, "peak_mib": 701, "delta_mib": 1.0},
                "torch_fused": {"base_mib": 700, "peak_mib": 702, "delta_mib": 2.0},
            },
        }
    return [{"threads": 1, "models": models}]


def test_report_files(tmp_path: Path) -> None:
    meta = suite_report.machine("cpu")
    meta.update(size="cpu", sizes={"mlp": "d=64"}, rounds=3, round_ms=30, warmup=5, flodl=None)
    meta["flodl_missing"] = ["convnet"]
    suite_report.write(tmp_path, meta, fake_runs())
    md = (tmp_path / "suite.md").read_text()
    assert "| mlp | 1,000 | 100 | 300 | 200 | 90 | 0.33 | 0.50 | 1.11 | 0.50 |" in md
    assert "convnet: a note" in md and meta["cpu"] in md
    record = json.loads((tmp_path / "suite.json").read_text())
    assert record["meta"]["torch"] == torch.__version__ and record["runs"][0]["threads"] == 1
    root = ET.fromstring((tmp_path / "suite.svg").read_text())
    bars = [
        e
        for e in root.iter("{http://www.w3.org/2000/svg}rect")
        if e.find("{http://www.w3.org/2000/svg}title") is not None
    ]
    assert len(bars) == 6  # two models x (default, fused, compile)


def test_suite_runs_end_to_end(tmp_path: Path, monkeypatch) -> None:
    """suite.py's own loop on one model (no compile, no memory children):
    every eager side timed, the three result files written."""
    argv = ["suite.py", "--model", "mlp", "--quick", "--no-compile", "--no-memory", "--out", str(tmp_path)]
    monkeypatch.setattr(sys, "argv", argv)
    suite.main()
    record = json.loads((tmp_path / "suite.json").read_text())
    mlp = record["runs"][0]["models"]["mlp"]
    assert set(mlp["us"]) >= {"ferrotorch", "torch_default", "torch_fused"}
    assert all(v > 0 for v in mlp["us"].values())
    assert record["runs"][0]["threads"] == 1 and record["meta"]["size"] == "cpu"
    assert "| mlp |" in (tmp_path / "suite.md").read_text()
    assert (tmp_path / "suite.svg").read_text().startswith("<svg")
