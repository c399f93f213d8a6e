"""Applies the mechanical conventions of ``python/ferrotorch/_core.pyi`` from
the built extension, in place and idempotently (``make stubs``):

* a class whose public name is a constructor proxy (``ferrotorch._boundary``)
  gets ``metaclass=_Constructor``; a class Python cannot subclass that is not
  proxied gets ``@final``;
* on a pyo3 class (built in ``__new__``), ``def __init__(self, ...) -> None``
  becomes ``def __new__(cls, ...) -> Name`` (``-> Self`` on private bases);
* a stub-only type alias gets a leading ``_`` (stubtest: not present at runtime);
* a default pyo3 does not show (``...`` in the runtime signature) becomes ``...``.

Run it after merging stub entries, then ``make stubtest`` names what still
needs a hand (a missing entry, a wrong parameter)."""

from __future__ import annotations

import ast
import inspect
import re
import sys
from pathlib import Path
from typing import Any, Optional

import ferrotorch  # noqa: F401  (imports torch, then guards the extension)
from ferrotorch import _boundary, _core

STUB = Path(__file__).resolve().parents[1] / "python" / "ferrotorch" / "_core.pyi"


def _runtime_signature(obj: Any) -> Optional[inspect.Signature]:
    try:
        return inspect.signature(obj)
    except (TypeError, ValueError):
        return None


class Fixer:
    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.tree = ast.parse(text)

    def sub(self, node: Any, pattern: str, repl: Any, count: int = 1) -> None:
        a, b = node.lineno - 1, node.end_lineno or node.lineno
        seg = "\n".join(self.lines[a:b])
        new = re.sub(pattern, repl, seg, count=count, flags=re.S)
        assert new.count("\n") == seg.count("\n"), (pattern, seg)
        self.lines[a:b] = new.split("\n")

    def ellipsis_defaults(self, fn: ast.FunctionDef, sig: Optional[inspect.Signature]) -> None:
        if sig is None:
            return
        for arg, default in zip(reversed(fn.args.args + fn.args.kwonlyargs), reversed(self._defaults(fn))):
            p = sig.parameters.get(arg.arg)
            if default is None or p is None or p.default is not Ellipsis:
                continue
            if isinstance(default, ast.Constant) and default.value is Ellipsis:
                continue
            line = self.lines[default.lineno - 1]
            self.lines[default.lineno - 1] = (
                line[: default.col_offset] + "..." + line[default.end_col_offset :]
            )

    @staticmethod
    def _defaults(fn: ast.FunctionDef) -> list:
        a = fn.args
        positional = [None] * (len(a.args) - len(a.defaults)) + list(a.defaults)
        return positional + list(a.kw_defaults)

    def run(self) -> str:
        aliases = []
        # Bottom-up, so edits that change a line's length never move a later node.
        for node in reversed(self.tree.body):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                name = getattr(node.targets[0], "id", "")
                if name and not name.startswith("_") and not hasattr(_core, name):
                    aliases.append(name)
            elif isinstance(node, ast.FunctionDef):
                self.ellipsis_defaults(node, _runtime_signature(getattr(_core, node.name, None)))
            elif isinstance(node, ast.ClassDef):
                self.fix_class(node)
        text = "\n".join(self.lines)
        for name in aliases:
            text = re.sub(rf"(?<![\w.]){name}\b", f"_{name}", text)
        return text

    def fix_class(self, node: ast.ClassDef) -> None:
        public: Any = getattr(_core, node.name, None)
        private_base = node.name.startswith("_") and public is None
        if not isinstance(public, type) and not private_base:
            return
        proxied = isinstance(public, _boundary._Constructor)
        ext = public._ft_cls if proxied else public
        pyo3 = private_base or (ext is not None and "__init__" not in vars(ext))
        for fn in reversed(node.body):
            if not isinstance(fn, ast.FunctionDef):
                continue
            # Defaults first: they edit by the parse's columns, right to left.
            if ext is not None and fn.name in ("__new__", "__init__"):
                sig = _runtime_signature(public if proxied else ext)
                # The stub's constructor has `cls` first; the class signature does not.
                if sig is not None:
                    cls = inspect.Parameter("cls", inspect.Parameter.POSITIONAL_OR_KEYWORD)
                    sig = sig.replace(parameters=[cls, *sig.parameters.values()])
                self.ellipsis_defaults(fn, sig)
            elif ext is not None:
                self.ellipsis_defaults(fn, _runtime_signature(getattr(ext, fn.name, None)))
            if fn.name == "__init__" and pyo3:
                ret = "Self" if private_base else node.name
                self.sub(fn, r"def __init__\((\s*)self\b", r"def __new__(\1cls")
                self.sub(fn, r"\)\s*->\s*None:", f") -> {ret}:")
        if ext is None:
            return
        header = node.lineno - 1
        if proxied and "metaclass=" not in self.lines[header]:
            self.lines[header] = re.sub(
                r"^class (\w+)(?:\((.*)\))?:",
                lambda m: f"class {m[1]}({m[2] + ', ' if m[2] else ''}metaclass=_Constructor):",
                self.lines[header],
            )
        decorators = {getattr(d, "id", "") for d in node.decorator_list}
        if not proxied and not _boundary._subclassable(ext) and "final" not in decorators:
            self.lines.insert(header, "@final")


def main() -> int:
    text = STUB.read_text()
    new = Fixer(text).run()
    if new != text:
        STUB.write_text(new)
        print(f"{STUB}: conventions applied; run `make stubtest` for the rest")
    return 0


if __name__ == "__main__":
    sys.exit(main())
