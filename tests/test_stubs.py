"""The hand-written stub `_core.pyi` matches the runtime (stubtest), and the
boundary's constructor proxies keep the extension's signatures."""

import importlib.util
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import ferrotorch as ft
from ferrotorch import _boundary, _core

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


def _proxies():
    return [(n, c) for n, c in sorted(vars(_core).items()) if isinstance(c, _boundary._Constructor)]


def test_every_constructible_class_is_proxied_with_its_signature():
    proxies = _proxies()
    assert len(proxies) > 50
    for name, proxy in proxies:
        ext = proxy._ft_cls
        want = inspect.signature(ext)  # from pyo3's __text_signature__
        assert inspect.signature(proxy) == want, name
        new = inspect.signature(proxy.__new__)
        assert list(new.parameters)[1:] == list(want.parameters), name
        # Methods and properties are listed on the public name too (stubtest reads them there).
        public = {k for k in vars(ext) if not k.startswith("_")}
        assert public <= set(vars(proxy)), (name, public - set(vars(proxy)))


def test_classes_without_a_constructor_are_not_proxied():
    for name in ("Epoch", "MergeOp", "LoopBuilder", "Profile"):
        cls = getattr(_core, name)
        assert not isinstance(cls, _boundary._Constructor), name
        with pytest.raises(TypeError, match="No constructor"):
            cls()


def test_layer_is_a_torch_module_over_the_extension_type_and_translates_errors():
    lin = ft.nn.Linear(3, 4, bias=False)
    assert type(lin) is ft.nn.Linear and isinstance(lin, torch.nn.Module)
    assert issubclass(ft.nn.Linear, ft.nn.Module) and issubclass(ft.nn.Module, torch.nn.Module)
    assert type(lin._core) is _core.Linear._ft_cls and isinstance(lin._core, _core.Module)
    with pytest.raises(ft.InputTypeError, match=r"Linear\(\): argument 'in_features'.*\(got 'a'\)"):
        ft.nn.Linear("a", 4)
    with pytest.raises(ft.ConfigError, match=r"argument 'out_features' must be an integer below 2\*\*64"):
        ft.nn.Linear(3, 2**70)
    with pytest.raises(ft.InputTypeError, match="unexpected keyword argument 'bogus'"):
        ft.nn.Linear(3, 4, bogus=1)


def test_stub_follows_its_conventions():
    # tools/stub_fixup.py (`make stubs`) changes nothing in the committed stub.
    tool = ALLOWLIST.parent / "stub_fixup.py"
    spec = importlib.util.spec_from_file_location("stub_fixup", tool)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.STUB.read_text()
    assert mod.Fixer(text).run() == text
    # It does change a stub written the plain way.
    plain = (
        "class Linear(Module):\n    def __init__(self, in_features: int, out_features: int) -> None: ...\n"
    )
    fixed = mod.Fixer(plain).run()
    assert fixed.startswith("class Linear(Module, metaclass=_Constructor):\n    def __new__(cls, in_features")
    assert fixed.rstrip().endswith("-> Linear: ...")
