//! ferrotorch's exception hierarchy, created here and re-exported by
//! `ferrotorch.errors`: one base class `Error` and one subclass per [`Exc`],
//! each also deriving from the builtin that fits (ConfigError is a
//! ValueError...). Raising is typed (`Exc::Config.err(msg)`); core errors map
//! through one exhaustive `match`. Python exceptions raised inside callbacks
//! travel inside the core's error ([`crate::Error::External`]'s cause) and
//! are re-raised unchanged.

use pyo3::exceptions::{
    PyBaseException, PyException, PyIndexError, PyKeyError, PyOSError, PyRuntimeError, PyTypeError,
    PyValueError,
};
use pyo3::prelude::*;
use pyo3::sync::GILOnceCell;
use pyo3::types::{PyDict, PyTuple, PyType};

use crate::{Cause, Error};

/// One exception class of the hierarchy (besides the base `Error`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exc {
    Config,
    Shape,
    DType,
    InputType,
    Graph,
    Tag,
    OutOfRange,
    Torch,
    Checkpoint,
    File,
    Training,
    Device,
    Internal,
}

impl Exc {
    const ALL: [Exc; 13] = [
        Exc::Config,
        Exc::Shape,
        Exc::DType,
        Exc::InputType,
        Exc::Graph,
        Exc::Tag,
        Exc::OutOfRange,
        Exc::Torch,
        Exc::Checkpoint,
        Exc::File,
        Exc::Training,
        Exc::Device,
        Exc::Internal,
    ];

    /// Class name, builtin base and docstring.
    fn spec(self, py: Python<'_>) -> (&'static str, Bound<'_, PyType>, &'static str) {
        match self {
            Exc::Config => (
                "ConfigError",
                py.get_type::<PyValueError>(),
                "A bad hyperparameter, option or name; names the argument, the value and the rule.",
            ),
            Exc::Shape => (
                "ShapeError",
                py.get_type::<PyValueError>(),
                "Tensor shapes that do not fit; the message names both shapes.",
            ),
            Exc::DType => (
                "DTypeError",
                py.get_type::<PyTypeError>(),
                "A tensor of the wrong dtype.",
            ),
            Exc::InputType => (
                "InputTypeError",
                py.get_type::<PyTypeError>(),
                "An argument of the wrong Python type (a str where an int is needed, a \
                 single tensor where a list is); names the argument.",
            ),
            Exc::Graph => (
                "GraphError",
                py.get_type::<PyValueError>(),
                "An invalid graph: build errors and bad wiring, naming the node or tag.",
            ),
            Exc::Tag => (
                "TagError",
                py.get_type::<PyKeyError>(),
                "An unknown tag, path, key or name.",
            ),
            Exc::OutOfRange => (
                "OutOfRangeError",
                py.get_type::<PyIndexError>(),
                "An index past the end of a sequence.",
            ),
            Exc::Torch => (
                "TorchError",
                py.get_type::<PyRuntimeError>(),
                "A failure reported by libtorch itself.",
            ),
            Exc::Checkpoint => (
                "CheckpointError",
                py.get_type::<PyValueError>(),
                "A file that is truncated, corrupt, of another kind or architecture, or \
                 whose entries do not fit; names the file and the field. Nothing was changed.",
            ),
            Exc::File => (
                "FileError",
                py.get_type::<PyOSError>(),
                "An operating-system failure on a file (missing, no permission, disk full); \
                 names the file.",
            ),
            Exc::Training => (
                "TrainingError",
                py.get_type::<PyRuntimeError>(),
                "Training cannot go on: a non-finite loss or gradient, named by step and batch.",
            ),
            Exc::Device => (
                "DeviceError",
                py.get_type::<PyValueError>(),
                "A tensor on another device than the node or parameters it meets; names both.",
            ),
            Exc::Internal => (
                "InternalError",
                py.get_type::<PyRuntimeError>(),
                "A bug in ferrotorch itself (a Rust panic caught at the boundary, or its own state \
                 broken: a poisoned lock, missing optimizer state); please report it.",
            ),
        }
    }

    /// This kind's class.
    pub fn class(self, py: Python<'_>) -> PyResult<Bound<'_, PyType>> {
        // Variants are declared in `ALL`'s order, so the discriminant indexes it.
        Ok(classes(py)?.kinds[self as usize].bind(py).clone())
    }

    /// The exception to raise, with `msg`.
    pub fn err(self, msg: impl Into<String>) -> PyErr {
        let msg = msg.into();
        Python::with_gil(|py| match self.class(py) {
            Ok(cls) => PyErr::from_type(cls, msg),
            // Only reachable if creating the classes failed: report that.
            Err(e) => e,
        })
    }
}

struct Classes {
    base: Py<PyType>,
    kinds: Vec<Py<PyType>>,
}

static CLASSES: GILOnceCell<Classes> = GILOnceCell::new();

fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Bound<'py, PyTuple>,
    doc: &str,
) -> PyResult<Bound<'py, PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "ferrotorch.errors")?;
    ns.set_item("__doc__", doc)?;
    if name == "TagError" {
        // KeyError quotes its message; keep it readable.
        ns.set_item(
            "__str__",
            py.get_type::<PyBaseException>().getattr("__str__")?,
        )?;
    }
    Ok(py
        .get_type::<PyType>()
        .call1((name, bases, ns))?
        .downcast_into::<PyType>()?)
}

fn classes(py: Python<'_>) -> PyResult<&Classes> {
    CLASSES.get_or_try_init(py, || {
        let base = new_class(
            py,
            "Error",
            PyTuple::new(py, [py.get_type::<PyException>()])?,
            "Base class of every ferrotorch error.",
        )?;
        let mut kinds = Vec::with_capacity(Exc::ALL.len());
        for k in Exc::ALL {
            let (name, builtin, doc) = k.spec(py);
            let bases = PyTuple::new(py, [base.clone(), builtin])?;
            kinds.push(new_class(py, name, bases, doc)?.unbind());
        }
        Ok(Classes {
            base: base.unbind(),
            kinds,
        })
    })
}

/// Adds `Error`, every subclass and pyo3's `PanicException` to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let c = classes(py)?;
    m.add("Error", c.base.bind(py))?;
    for k in Exc::ALL {
        let cls = k.class(py)?;
        m.add(k.spec(py).0, cls)?;
    }
    m.add(
        "PanicException",
        py.get_type::<pyo3::panic::PanicException>(),
    )?;
    #[cfg(feature = "test-hooks")]
    m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
    m.add_function(wrap_pyfunction!(_core_error_for_tests, m)?)?;
    Ok(())
}

#[cfg(feature = "test-hooks")]
#[pyfunction]
/// Panics inside the extension, so tests can check that a panic reaches the
/// user as `InternalError`, never as a bare `PanicException`.
fn _panic_for_tests(msg: String) {
    panic!("{msg}");
}

#[pyfunction]
/// Raises what the core error `variant` (its Rust name: "Value", "Internal",
/// ...) with `msg` becomes in Python, so tests can check the mapping.
fn _core_error_for_tests(variant: &str, msg: String) -> PyResult<()> {
    let e = match variant {
        "Value" => Error::Value(msg),
        "Shape" => Error::Shape(msg),
        "DType" => Error::DType(msg),
        "Graph" => Error::Graph(msg),
        "Key" => Error::Key(msg),
        "Torch" => Error::Torch(msg),
        "External" => Error::External {
            message: msg,
            cause: Cause::none(),
        },
        "Checkpoint" => Error::Checkpoint(msg),
        "Io" => Error::Io(msg),
        "Training" => Error::Training(msg),
        "Device" => Error::Device(msg),
        "OutOfRange" => Error::OutOfRange(msg),
        "Internal" => Error::Internal(msg),
        other => return Err(Exc::Config.err(format!("no core error variant '{other}'"))),
    };
    Err(to_py(e))
}

/// Turns a Python exception from a callback into a core error that carries
/// it, so `to_py` re-raises that exception as it was (`what` names the
/// callback in the message, for Rust-side reports).
pub fn stash(err: PyErr, what: &str) -> Error {
    Error::External {
        message: format!("{what} raised {err}"),
        cause: Cause::new(err),
    }
}

/// The class for each core error: exhaustive, so a new variant must be mapped.
fn kind(e: &Error) -> Exc {
    match e {
        Error::Value(_) => Exc::Config,
        Error::Shape(_) => Exc::Shape,
        Error::DType(_) => Exc::DType,
        Error::Graph(_) => Exc::Graph,
        Error::Key(_) => Exc::Tag,
        Error::Torch(_) | Error::External { .. } => Exc::Torch,
        Error::Checkpoint(_) => Exc::Checkpoint,
        Error::Io(_) => Exc::File,
        Error::Training(_) => Exc::Training,
        Error::Device(_) => Exc::Device,
        Error::OutOfRange(_) => Exc::OutOfRange,
        Error::Internal(_) => Exc::Internal,
    }
}

pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::External { message, cause } => {
            return match cause.take::<PyErr>() {
                Some(err) => err,
                None => Exc::Torch.err(message),
            };
        }
        // A Python hook that libtorch called (saved-tensor hooks, tensor
        // hooks, __torch_function__) raised: libtorch throws a `python_error`
        // whose message is empty and leaves the exception set on this
        // thread. Re-raise that exception, not an empty TorchError:
        // torch.utils.checkpoint stops its recomputation by raising one.
        Error::Torch(_) => {
            if let Some(err) = Python::with_gil(PyErr::take) {
                return err;
            }
        }
        _ => {}
    }
    kind(&e).err(api_words(&e.to_string()))
}

/// The core names its own concepts; a message about one that Python reaches
/// through its own API gets that API's words here (subject: at the start).
const API_SUBJECTS: &[(&str, &str)] = &[
    (
        "batched loss reads are not possible here",
        "Trainer: loss_reads='batched' is not possible here",
    ),
    ("loss reads must be", "Trainer: loss_reads must be"),
    ("training options: ", "Trainer: "),
    ("CUDA graph capture: ", "Trainer(cuda_graph=True): "),
    ("run over a loader: ", "Trainer.fit: "),
    (
        "the model takes one input",
        "Trainer: the model takes one input",
    ),
    (
        "the loss must be a scalar",
        "Trainer: the loss must be a scalar",
    ),
    ("the batch is empty", "Trainer.step: the batch is empty"),
    ("graph step: ", "Graph.step: "),
    ("loss step: autocast to ", "Trainer.step_loss: amp=torch."),
];

/// Phrases of core messages and their API words, anywhere in a message.
const API_PHRASES: &[(&str, &str)] = &[
    (
        "; run the forward inside the step",
        "; use step(closure), whose closure runs under autocast, or run the forward under \
         torch.autocast yourself and give the Trainer scaler= (float16) without amp=",
    ),
    (
        "raising on a non-finite loss checks",
        "on_nonfinite='raise' checks",
    ),
    (
        "skipping non-finite steps decides",
        "on_nonfinite='skip' decides",
    ),
    ("a loss callback runs", "a Python loss callable runs"),
    ("load without the hash check", "load with strict_hash=False"),
    ("or migrate the checkpoint", "or migrate_checkpoint"),
];

/// `msg` with the core's words for Python's API replaced by the API's.
fn api_words(msg: &str) -> String {
    let mut out = match API_SUBJECTS.iter().find(|(core, _)| msg.starts_with(core)) {
        Some((core, api)) => format!("{api}{}", &msg[core.len()..]),
        None => msg.to_string(),
    };
    for (core, api) in API_PHRASES {
        if out.contains(core) {
            out = out.replace(core, api);
        }
    }
    out
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

/// Raises `kind` with a message from the bindings.
pub fn raise(kind: Exc, msg: String) -> PyErr {
    kind.err(msg)
}
