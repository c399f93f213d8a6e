//! The binding boundary: what pyo3 raises by itself, before or around a
//! binding's body, becomes ferrotorch's hierarchy. pyo3 reports a wrong
//! argument type as a plain `TypeError` ("argument 'x': ..."), a missing or
//! unknown argument as a plain `TypeError`, a negative value for an unsigned
//! argument as an `OverflowError` that names no argument, and a panic as its
//! `PanicException` (a `BaseException`). [`translate`] turns these into
//! `InputTypeError` (naming the callable, the argument and its value),
//! `ConfigError` (naming the argument, the value and the rule) and
//! `InternalError`.
//!
//! It runs at two places, both here: [`checked_call`] (`_core.call`), the
//! one call through which Python code builds a Rust core (the layers',
//! optimizers', schedulers' and losses' `__init__`) or calls one for a user
//! (the graph builder's methods), and [`Function`], which
//! [`guard_functions`] puts in place of each module-level function when the
//! module is created (a function's error path cannot be reached otherwise).
//! Classes are never rewritten. Only errors raised by the call itself are
//! translated (they carry no Python traceback): a `TypeError` from a user
//! callback keeps its type and traceback.

use pyo3::exceptions::{PyOverflowError, PyTypeError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyCFunction, PyDict, PyInt, PyString, PyTuple};

use super::errors::Exc;

/// A value's repr for a message, cut at 80 characters.
fn shown(v: &Bound<'_, PyAny>) -> String {
    let r = v
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".into());
    r.chars().take(80).collect()
}

/// (name, value) of each argument, bound to `callable`'s signature (its
/// `__text_signature__` for a pyo3 class or function); positions when it has
/// none or the arguments do not bind.
fn bound<'py>(
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> Vec<(String, Bound<'py, PyAny>)> {
    let py = callable.py();
    let named = || -> PyResult<Vec<(String, Bound<'py, PyAny>)>> {
        let sig = py
            .import("inspect")?
            .call_method1("signature", (callable,))?;
        let b = sig.call_method("bind_partial", args, kwargs)?;
        let d = b.getattr("arguments")?;
        let d = d.downcast::<PyDict>()?;
        d.iter().map(|(k, v)| Ok((k.extract()?, v))).collect()
    };
    named().unwrap_or_else(|_| {
        let mut out: Vec<_> = args
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("#{i}"), a))
            .collect();
        if let Some(kw) = kwargs {
            out.extend(kw.iter().filter_map(|(k, v)| Some((k.extract().ok()?, v))));
        }
        out
    })
}

/// `v`'s fault as an unsigned 64-bit argument, if it has one.
fn out_of_range(v: &Bound<'_, PyAny>) -> Option<&'static str> {
    if !v.is_instance_of::<PyInt>() || v.is_instance_of::<PyBool>() {
        return None;
    }
    if v.lt(0).ok()? {
        return Some("a non-negative integer");
    }
    (v.ge(1u128 << 64).ok()?).then_some("an integer below 2**64")
}

/// `err`, raised by calling `callable` (described as `what`, e.g.
/// "Linear()") with `args`, in ferrotorch's hierarchy.
pub fn translate(
    py: Python<'_>,
    err: PyErr,
    what: &str,
    callable: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyErr {
    let into = |kind: Exc, msg: String| {
        let e = kind.err(msg);
        e.set_cause(py, Some(err.clone_ref(py)));
        e
    };
    if err.is_instance_of::<PanicException>(py) {
        let msg = err.value(py).to_string();
        return into(
            Exc::Internal,
            format!("{what}: internal error in ferrotorch (a Rust panic: {msg}); please report it"),
        );
    }
    // Raised by the call itself (pyo3's argument handling), not by Python
    // code it ran: no traceback.
    if err.traceback(py).is_some() {
        return err;
    }
    let ty = err.get_type(py);
    if ty.is(&py.get_type::<PyTypeError>()) {
        let mut msg = err.value(py).to_string();
        if let Some(rest) = msg.strip_prefix("argument '") {
            let name = rest.split('\'').next().unwrap_or_default().to_string();
            if let Some((_, v)) = bound(callable, args, kwargs)
                .into_iter()
                .find(|(n, _)| *n == name)
            {
                msg = format!("{msg} (got {})", shown(&v));
            }
            msg = format!("{what}: {msg}");
        }
        return into(Exc::InputType, msg);
    }
    if ty.is(&py.get_type::<PyOverflowError>()) {
        for (name, v) in bound(callable, args, kwargs) {
            if let Some(rule) = out_of_range(&v) {
                return into(
                    Exc::Config,
                    format!(
                        "{what}: argument '{name}' must be {rule}, got {}",
                        shown(&v)
                    ),
                );
            }
        }
        let msg = err.value(py).to_string();
        return into(
            Exc::Config,
            format!("{what}: an integer argument is out of range ({msg})"),
        );
    }
    err
}

/// A panic's message (what pyo3 puts in its `PanicException`).
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "panic from Rust code".into()
    }
}

/// `callable(*args, **kwargs)` with [`translate`]'s mapping of its errors.
fn call<'py>(
    what: &str,
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    // pyo3 resumes a panic when the call's error is its PanicException (a
    // panic in the callable): catch it here.
    let result =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| callable.call(args, kwargs)))
            .unwrap_or_else(|payload| Err(PanicException::new_err(panic_message(&*payload))));
    result.map_err(|e| translate(callable.py(), e, what, callable, args, kwargs))
}

#[pyfunction]
#[pyo3(name = "call", signature = (what, callable, /, *args, **kwargs))]
/// ``callable(*args, **kwargs)`` for Python code that builds a Rust core
/// (``call("Linear", _core.Linear, 3, 4)``) or calls one on a user's behalf
/// (``call("FlowBuilder.for_n", builder.for_n, 3)``), with ferrotorch's
/// errors for what pyo3 raises: a wrong type is an ``InputTypeError`` naming
/// ``what``, the argument and its value; a negative or too large count a
/// ``ConfigError`` naming the argument and the rule; a panic an
/// ``InternalError``.
fn checked_call<'py>(
    what: &str,
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
    kwargs: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    call(&format!("{what}()"), callable, args, kwargs)
}

/// A module-level function of the extension, called with [`translate`]'s
/// mapping. It reads as the function it holds (`__wrapped__`, `__name__`,
/// `__doc__`, `inspect.signature`: in its `__dict__`), does not bind as a
/// method (as a builtin function), and pickles by name.
#[pyclass(name = "function", module = "ferrotorch._core", frozen, dict)]
pub struct Function {
    inner: Py<PyAny>,
    name: Py<PyString>,
    what: String,
}

#[pymethods]
impl Function {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        args: &Bound<'py, PyTuple>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        call(&self.what, self.inner.bind(py), args, kwargs)
    }

    fn __get__(
        slf: Py<Self>,
        _obj: Option<&Bound<'_, PyAny>>,
        _cls: Option<&Bound<'_, PyAny>>,
    ) -> Py<Self> {
        slf
    }

    /// Pickled as the module attribute of its name (as a builtin function).
    fn __reduce__(&self, py: Python<'_>) -> Py<PyString> {
        self.name.clone_ref(py)
    }

    fn __repr__(&self) -> String {
        format!("<built-in function {}>", self.what.trim_end_matches("()"))
    }
}

/// Puts a [`Function`] in place of each function of `m` (but `call`, which
/// translates itself): run last, when every binding is registered.
pub fn guard_functions(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let functions: Vec<_> = m
        .dict()
        .iter()
        .filter(|(k, v)| v.is_instance_of::<PyCFunction>() && !k.eq("call").unwrap_or(true))
        .collect();
    for (k, v) in functions {
        let name = k.downcast_into::<PyString>()?;
        let f = Bound::new(
            py,
            Function {
                inner: v.clone().unbind(),
                name: name.clone().unbind(),
                what: format!("{}()", name.to_cow()?),
            },
        )?;
        let d = f.getattr("__dict__")?;
        for attr in ["__module__", "__doc__", "__text_signature__"] {
            d.set_item(attr, v.getattr(attr)?)?;
        }
        d.set_item("__name__", &name)?;
        d.set_item("__qualname__", &name)?;
        d.set_item("__wrapped__", &v)?;
        m.setattr(name, f)?;
    }
    Ok(())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(checked_call, m)?)?;
    Ok(())
}
