"""The binding boundary: closes the exception hierarchy over what pyo3 raises
by itself, before any ferrotorch code runs.

pyo3 converts arguments before a Rust function starts, and reports a wrong
type as a plain ``TypeError`` ("argument 'in_features': 'str' object cannot
be interpreted as an integer"), a negative value for an unsigned argument as
an ``OverflowError`` that names no argument, and a Rust panic as a
``PanicException`` (a ``BaseException``). :func:`guard` wraps every function,
method and property setter of the extension once, at import, and puts a
constructor proxy (:class:`_Constructor`) in place of each class users build
directly (an extension type's ``__new__`` cannot be replaced), so that these
become :class:`~ferrotorch.InputTypeError`,
:class:`~ferrotorch.ConfigError` (naming the argument, the value and the
rule) and :class:`~ferrotorch.InternalError`.

Only exceptions raised by the extension call itself are translated (their
traceback has no Python frame below the wrapper): a ``TypeError`` raised by a
user callback the core called keeps its type and traceback.
"""

from __future__ import annotations

import functools
import inspect
import types
from typing import Any, Callable, Optional

from . import _core

_U64 = 2**64
# Slots whose arguments come from users; the rest take none or are protocol.
_SLOTS = ("__call__", "__getitem__", "__setitem__", "__contains__")


def _raised_here(e: BaseException) -> bool:
    tb = e.__traceback__
    return tb is not None and tb.tb_next is None


def _bound(fn: Callable, args: tuple, kwargs: dict) -> Optional[inspect.BoundArguments]:
    try:
        return inspect.signature(fn).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return None


def _overflow(where: str, fn: Callable, args: tuple, kwargs: dict, e: BaseException) -> BaseException:
    named = _bound(fn, args, kwargs)
    pairs = (
        list(named.arguments.items())
        if named
        else [(f"#{i}", a) for i, a in enumerate(args)] + list(kwargs.items())
    )
    for name, v in pairs:
        if isinstance(v, int) and not isinstance(v, bool) and (v < 0 or v >= _U64):
            rule = "a non-negative integer" if v < 0 else "an integer below 2**64"
            return _core.ConfigError(f"{where}: argument '{name}' must be {rule}, got {v}")
    return _core.ConfigError(f"{where}: an integer argument is out of range ({e})")


def _type_error(where: str, fn: Callable, args: tuple, kwargs: dict, e: BaseException) -> BaseException:
    msg = str(e)
    if msg.startswith("argument '"):
        name = msg[len("argument '") :].split("'", 1)[0]
        named = _bound(fn, args, kwargs)
        if named is not None and name in named.arguments:
            msg += f" (got {named.arguments[name]!r:.80})"
        msg = f"{where}: {msg}"
    return _core.InputTypeError(msg)


def _wrap(fn: Callable, where: str) -> Callable:
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _core.PanicException as e:
            raise _core.InternalError(
                f"{where}: internal error in ferrotorch (a Rust panic: {e}); please report it"
            ) from e
        except (TypeError, OverflowError) as e:
            if type(e) is TypeError and _raised_here(e):
                raise _type_error(where, fn, args, kwargs, e) from e
            if type(e) is OverflowError and _raised_here(e):
                raise _overflow(where, fn, args, kwargs, e) from e
            raise

    call.__ferrotorch_guarded__ = True  # type: ignore[attr-defined]
    return call


# What a proxy keeps of its own rather than copying from the extension class.
_OWN = frozenset(["__new__", "__init__", "__doc__", "__module__", "__qualname__", "__dict__", "__weakref__"])


class _Constructor(type):
    """Metaclass of the public name of an extension class: ``isinstance``,
    ``issubclass`` and class attributes go to the extension class, so objects
    the core returns pass ``isinstance(obj, ferrotorch.nn.Linear)``."""

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, cls._ft_cls)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, cls._ft_cls)

    def __getattr__(cls, name: str) -> Any:
        return getattr(cls._ft_cls, name)


def _constructor(cls: type) -> type:
    """The public name of ``cls``: a class whose ``__new__`` builds the
    extension object (the same type as objects the core returns) with the
    boundary's translation. ``__new__`` carries the extension's signature, so
    ``inspect.signature``, ``help`` and stubtest see the real parameters."""
    build = _wrap(cls, f"{cls.__name__}()")

    def __new__(_proxy: type, *args: Any, **kwargs: Any) -> Any:
        return build(*args, **kwargs)

    try:
        sig = inspect.signature(cls)
        first = inspect.Parameter("cls", inspect.Parameter.POSITIONAL_ONLY)
        __new__.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[first, *sig.parameters.values()]
        )
    except (TypeError, ValueError):
        pass
    __new__.__qualname__ = f"{cls.__qualname__}.__new__"
    # The extension class's attributes, copied so that the public name lists
    # them (``dir``, stubtest); instances still look them up on ``cls``.
    ns = {k: v for k, v in vars(cls).items() if k not in _OWN}
    ns |= {
        "_ft_cls": cls,
        "__new__": __new__,
        "__doc__": cls.__doc__,
        "__module__": cls.__module__,
        "__qualname__": cls.__qualname__,
    }
    return _Constructor(cls.__name__, (), ns)


def _subclassable(cls: type) -> bool:
    try:
        type("_probe", (cls,), {})
    except TypeError:
        return False
    return True


def _guard_class(cls: type) -> None:
    for name, v in list(vars(cls).items()):
        where = f"{cls.__name__}.{name}"
        if name == "__new__":
            continue  # see _Constructor
        if isinstance(v, types.BuiltinFunctionType):  # class-bound functions
            setattr(cls, name, staticmethod(_wrap(v, where)))
        elif isinstance(v, staticmethod):
            setattr(cls, name, staticmethod(_wrap(v.__func__, where)))
        elif isinstance(v, (types.MethodDescriptorType, types.ClassMethodDescriptorType)):
            if isinstance(v, types.ClassMethodDescriptorType):
                setattr(cls, name, staticmethod(_wrap(v.__get__(None, cls), where)))
            else:
                setattr(cls, name, _wrap(v, where))
        elif isinstance(v, types.WrapperDescriptorType) and name in _SLOTS:
            setattr(cls, name, _wrap(v, where))
        elif isinstance(v, types.GetSetDescriptorType):
            setattr(cls, name, property(v.__get__, _wrap(v.__set__, where), doc=v.__doc__))


def call(fn: Callable, where: str, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` with the boundary's translation, for Python
    code that calls an extension constructor itself."""
    return _wrap(fn, where)(*args, **kwargs)


def guard(module: types.ModuleType) -> None:
    """Wraps every public callable of the extension ``module`` (once)."""
    if getattr(module, "__ferrotorch_guarded__", False):
        return
    for name, obj in list(vars(module).items()):
        if isinstance(obj, types.BuiltinFunctionType):
            setattr(module, name, _wrap(obj, f"{name}()"))
        elif isinstance(obj, type) and not issubclass(obj, BaseException):
            _guard_class(obj)
            # Bases that Python code subclasses keep their class; their
            # subclasses translate in their own __new__ (see :func:`call`).
            # pyo3 gives a class a text signature exactly when it has a
            # constructor; the others are only returned by the core.
            if obj.__text_signature__ is not None and not _subclassable(obj):
                setattr(module, name, _constructor(obj))
    module.__dict__["__ferrotorch_guarded__"] = True
