"""The hand-written stub `_core.pyi` matches the runtime (stubtest), and the
extension's classes are its own (no proxies), with their signatures."""

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ferrotorch as ft
from ferrotorch import _core

ALLOWLIST = Path(__file__).resolve().parents[1] / "tools" / "stubtest_allowlist.txt"


def test_stubtest_is_clean(tmp_path):
    pytest.importorskip("mypy.stubtest")
    # The installed package under test (in-place build or wheel) and its stub.
    root = Path(ft.__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    r = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "ferrotorch", "--allowlist", str(ALLOWLIST)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]


def test_extension_classes_are_plain_classes():
    # No proxies: the public names are the extension's classes themselves,
    # so objects the core returns are instances of them.
    for name in ("Tracker", "Trend", "DataLoader", "StepDecay", "AutocastGuard", "LoadReport", "Linear"):
        cls = getattr(_core, name)
        assert type(cls) is type, name
    assert isinstance(ft.FlowBuilder.from_(ft.nn.Linear(2, 2)).build().trends([]), _core.TrendGroup)


def test_classes_without_a_constructor_refuse_construction():
    for name in ("Epoch", "MergeOp", "LoopBuilder", "Profile"):
        with pytest.raises(TypeError, match="No constructor"):
            getattr(_core, name)()


def test_layer_is_a_torch_module_over_the_extension_type_and_translates_errors():
    lin = ft.nn.Linear(3, 4, bias=False)
    assert type(lin) is ft.nn.Linear and isinstance(lin, torch.nn.Module)
    assert issubclass(ft.nn.Linear, ft.nn.Module) and issubclass(ft.nn.Module, torch.nn.Module)
    assert type(lin._core) is _core.Linear and isinstance(lin._core, _core.Module)
    with pytest.raises(ft.InputTypeError, match=r"Linear\(\): argument 'in_features'.*\(got 'a'\)"):
        ft.nn.Linear("a", 4)
    with pytest.raises(ft.ConfigError, match=r"argument 'out_features' must be an integer below 2\*\*64"):
        ft.nn.Linear(3, 2**70)
    with pytest.raises(ft.InputTypeError, match="unexpected keyword argument 'bogus'"):
        ft.nn.Linear(3, 4, bogus=1)


def test_wrapped_functions_keep_their_signature_and_pickle():
    import pickle

    f = _core.mse_loss
    assert f.__wrapped__.__name__ == "mse_loss" and f.__name__ == "mse_loss"
    assert list(inspect.signature(f).parameters) == ["pred", "target", "reduction"]
    assert f.__doc__ == f.__wrapped__.__doc__
    assert pickle.loads(pickle.dumps(f)) is f
