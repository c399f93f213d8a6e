//! Maps core errors to the exception classes of `ferrotorch.errors`, and
//! carries Python exceptions raised inside callbacks back out unchanged.

use std::cell::RefCell;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::Error;

thread_local! {
    /// The exception a Python callback raised while the core was running.
    static PENDING: RefCell<Option<PyErr>> = const { RefCell::new(None) };
}

/// Turns a Python exception from a callback into a core error, keeping the
/// exception so `to_py` can re-raise it as it was.
pub fn stash(err: PyErr, what: &str) -> Error {
    let msg = format!("{what} raised {err}");
    PENDING.with(|p| *p.borrow_mut() = Some(err));
    Error::External(msg)
}

fn class_name(e: &Error) -> &'static str {
    match e {
        Error::Value(_) => "ConfigError",
        Error::Shape(_) => "ShapeError",
        Error::DType(_) => "DTypeError",
        Error::Graph(_) => "GraphError",
        Error::Key(_) => "TagError",
        Error::Torch(_) | Error::External(_) => "TorchError",
        Error::Checkpoint(_) => "CheckpointError",
        Error::Io(_) => "FileError",
        Error::Training(_) => "TrainingError",
        Error::Device(_) => "DeviceError",
    }
}

pub fn to_py(e: Error) -> PyErr {
    if let Error::External(_) = e {
        if let Some(err) = PENDING.with(|p| p.borrow_mut().take()) {
            return err;
        }
    }
    raise(class_name(&e), e.to_string())
}

/// `?`-friendly conversion for core results.
pub trait IntoPyResult<T> {
    fn py(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for crate::Result<T> {
    fn py(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// Raises `ferrotorch.errors.<class>` with a message from the bindings.
pub fn raise(class: &str, msg: String) -> PyErr {
    Python::with_gil(|py| {
        let cls = py
            .import("ferrotorch.errors")
            .and_then(|m| m.getattr(class))
            .and_then(|c| c.downcast_into::<PyType>().map_err(PyErr::from));
        match cls {
            Ok(cls) => PyErr::from_type(cls, msg),
            Err(_) => PyRuntimeError::new_err(msg),
        }
    })
}
