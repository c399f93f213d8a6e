"""The README's "Using ferrotorch with Lightning, Hugging Face and timm"
snippets run as written, in order, in one namespace."""

import pathlib
import re

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Using ferrotorch with Lightning, Hugging Face and timm"


def _snippets():
    text = README.read_text()
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    return re.findall(r"```python\n(.*?)```", text[start:end], re.S)


def test_the_section_has_its_snippets():
    assert len(_snippets()) == 4


def test_readme_ecosystem_snippets_run(tmp_path, monkeypatch):
    for lib in ("lightning", "transformers", "accelerate", "timm"):
        pytest.importorskip(lib)
    monkeypatch.chdir(tmp_path)  # the HF snippet writes its output folder here
    ns: dict = {}
    for code in _snippets():
        exec(compile(code, str(README), "exec"), ns)
    opt = ns["opt"]
    assert opt.param_groups[0]["lr"] != 0.05  # timm's schedule moved the lr
    assert ns["history"].steps == 4 and ns["logits"].shape == (1, 2)  # the Trainer snippet
    assert ns["trainer"].global_step == 4  # Lightning: 2 epochs x 4 batches / accumulation 2
