"""The example programs run to completion (smoke tests)."""

import os
import pathlib
import re
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def run_example(name, cwd=None):
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=120, cwd=cwd
    )


@pytest.mark.parametrize("name", ["quickstart.py", "showcase.py"])
def test_example_runs(name):
    r = run_example(name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip()


def test_sine_wave():
    r = run_example("sine_wave.py")
    assert r.returncode == 0, r.stdout + r.stderr
    mse = re.search(r"final validation MSE: (\S+)", r.stdout)
    assert mse and float(mse.group(1)) < 0.01, r.stdout
    assert "reloaded predictions identical: True" in r.stdout
    assert re.search(r"^  epoch\s+1/\d+  loss=\S+  val_loss=", r.stdout, re.M), r.stdout


def test_transfer_learning():
    r = run_example("transfer_learning.py")
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    # The partial load by name reports the encoder loaded and the old head skipped.
    partial = re.search(
        r"partial load by name: LoadReport\(loaded=\[(.*?)\], skipped=\[(.*?)\], missing=\[\]\)", out
    )
    assert partial and partial.group(1) and partial.group(2), out
    assert "subgraph load: LoadReport(" in out
    assert "both loads gave the pretrained encoder weights" in out
    assert "encoder frozen: True" in out
    acc = re.search(r"task B after fine-tuning: test accuracy (\S+)", out)
    assert acc and float(acc.group(1)) > 0.85, out


def test_digits_demo_writes_report(tmp_path):
    """`make demo`: per-epoch progress bars, the monitor's lines, an HTML report in the cwd."""
    r = run_example("digits.py", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    acc = re.search(r"held-out accuracy: ([\d.]+)%", out)
    assert acc and float(acc.group(1)) >= 95.0, out
    # Not a terminal here: the progress bar prints plain lines, then the monitor's epoch line.
    assert re.search(r"^epoch\s+1/25: (\d+)/\1 \(100%\)", out, re.M), out
    assert re.search(r"^  epoch 25/25  loss=\S+  val_loss=\S+  val_accuracy=\S+  \[", out, re.M), out
    assert "training complete in" in out
    report = tmp_path / "demo_report.html"
    assert report.is_file()
    assert f"HTML report: {os.path.realpath(report)}" in out or f"HTML report: {report}" in out
    html = report.read_text()
    for metric in ("loss", "val_loss", "val_accuracy"):
        assert f'data-metric="{metric}"' in html


def test_mnist_without_data_exits_0(tmp_path):
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist.py")], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no folder given" in r.stdout
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MNIST not found" in r.stdout and "train-images-idx3-ubyte" in r.stdout


def test_mnist_trains_on_a_tiny_generated_folder(tmp_path):
    import gzip
    import struct

    import numpy as np

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 96), ("t10k", 32)):
        pix = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        lab = rng.integers(0, 10, size=n, dtype=np.uint8)
        images = struct.pack(">IIII", 2051, n, 28, 28) + pix.tobytes()
        (raw / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, n) + lab.tobytes())
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "mnist.py"), str(tmp_path), "--epochs", "1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "MNIST: 96 training and 32 test images" in r.stdout, r.stdout
    assert re.search(r"^epoch 1/1: loss = \d+\.\d{4}  test accuracy = \d+\.\d\d%$", r.stdout, re.M), r.stdout
    assert re.search(r"^final test accuracy: \d+\.\d\d%", r.stdout, re.M), r.stdout
