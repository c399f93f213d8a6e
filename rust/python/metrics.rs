//! Metric functions and the Tracker class over `crate::metrics`.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt};

use super::args::extract;
use super::errors::{raise, Exc, IntoPyResult};
use super::tensor::{tensor_arg, to_py};
use crate::metrics::{self, Average};

type Pair = (tch::Tensor, tch::Tensor);

fn pair(f: &str, pred: &Bound<'_, PyAny>, targets: &Bound<'_, PyAny>) -> PyResult<Pair> {
    Ok((
        tensor_arg(pred, &format!("{f} pred"))?,
        tensor_arg(targets, &format!("{f} targets"))?,
    ))
}

/// Fraction of correct predictions (logits [N, C, ...] or labels).
#[pyfunction]
fn accuracy(pred: &Bound<'_, PyAny>, targets: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (p, t) = pair("accuracy", pred, targets)?;
    metrics::accuracy(&p, &t).py()
}

/// Fraction of samples whose target is among the k highest logits.
#[pyfunction]
#[pyo3(signature = (logits, targets, k = 2))]
fn top_k_accuracy(logits: &Bound<'_, PyAny>, targets: &Bound<'_, PyAny>, k: i64) -> PyResult<f64> {
    let (p, t) = pair("top_k_accuracy", logits, targets)?;
    metrics::top_k_accuracy(&p, &t, k).py()
}

/// Fraction of samples where pred > threshold agrees with a 0/1 target.
#[pyfunction]
#[pyo3(signature = (pred, targets, threshold = 0.5))]
fn binary_accuracy(
    pred: &Bound<'_, PyAny>,
    targets: &Bound<'_, PyAny>,
    threshold: f64,
) -> PyResult<f64> {
    let (p, t) = pair("binary_accuracy", pred, targets)?;
    metrics::binary_accuracy(&p, &t, threshold).py()
}

macro_rules! prf_fn {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[pyfunction]
        #[pyo3(signature = (pred, targets, average = "macro", num_classes = None))]
        fn $name(
            pred: &Bound<'_, PyAny>,
            targets: &Bound<'_, PyAny>,
            average: Option<&str>,
            num_classes: Option<i64>,
        ) -> PyResult<f64> {
            let f = stringify!($name);
            // average=None is scikit-learn's per-class mode, which is not offered.
            let avg = average
                .map_or_else(
                    || {
                        Err(crate::Error::Value(format!(
                            "average=None (per-class scores) is not supported; valid averages are {:?}",
                            Average::NAMES
                        )))
                    },
                    Average::from_name,
                )
                .map_err(|e| e.context(f))
                .py()?;
            let (p, t) = pair(f, pred, targets)?;
            metrics::$name(&p, &t, avg, num_classes).py()
        }
    };
}

prf_fn!(
    precision,
    "Precision averaged as scikit-learn's `average` (zero_division=0)."
);
prf_fn!(
    recall,
    "Recall averaged as scikit-learn's `average` (zero_division=0)."
);
prf_fn!(
    f1,
    "F1 averaged as scikit-learn's `average` (zero_division=0)."
);

/// [C, C] int64 counts, rows = true class, columns = predicted.
#[pyfunction]
#[pyo3(signature = (pred, targets, num_classes = None))]
fn confusion_matrix(
    py: Python<'_>,
    pred: &Bound<'_, PyAny>,
    targets: &Bound<'_, PyAny>,
    num_classes: Option<i64>,
) -> PyResult<PyObject> {
    let (p, t) = pair("confusion_matrix", pred, targets)?;
    to_py(py, &metrics::confusion_matrix(&p, &t, num_classes).py()?)
}

/// Mean absolute error.
#[pyfunction]
fn mae(pred: &Bound<'_, PyAny>, targets: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (p, t) = pair("mae", pred, targets)?;
    metrics::mae(&p, &t).py()
}

/// Root mean squared error (per output, averaged over outputs).
#[pyfunction]
fn rmse(pred: &Bound<'_, PyAny>, targets: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (p, t) = pair("rmse", pred, targets)?;
    metrics::rmse(&p, &t).py()
}

/// Coefficient of determination, as scikit-learn's r2_score(targets, pred).
#[pyfunction]
fn r2(pred: &Bound<'_, PyAny>, targets: &Bound<'_, PyAny>) -> PyResult<f64> {
    let (p, t) = pair("r2", pred, targets)?;
    metrics::r2(&p, &t).py()
}

/// Tracker(): named running means (Kaun's `Metric.tracker`).
///
/// `observe(name, value)` records a number or a one-element tensor;
/// `mean(name)` and `count(name)` raise TagError (a KeyError) for a name never
/// observed; `names()` and `to_dict()` are sorted by name; `summary()` reads
/// "accuracy: 0.9150 loss: 0.4231" (names sorted, four decimals, single
/// spaces); `reset()` forgets every observation.
#[pyclass(name = "Tracker", module = "ferrotorch._core")]
#[derive(Default)]
pub struct PyTracker {
    inner: metrics::Tracker,
}

#[pymethods]
impl PyTracker {
    #[new]
    fn new() -> Self {
        Self::default()
    }

    /// Records `value` (a number or a one-element tensor) under `name`.
    fn observe(&mut self, name: &Bound<'_, PyAny>, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let name: String = extract(name, "Tracker.observe()", "name", "a str")?;
        let name = name.as_str();
        // Numbers first: a tensor also converts to float, but should be
        // checked for shape by the core.
        if value.is_instance_of::<PyFloat>()
            || value.is_instance_of::<PyInt>()
            || value.is_instance_of::<PyBool>()
        {
            self.inner.observe(name, value.extract::<f64>()?);
            return Ok(());
        }
        match tensor_arg(value, name) {
            Ok(t) => self.inner.observe_tensor(name, &t).py(),
            Err(_) => match value.extract::<f64>() {
                // Other real scalars (numpy.float32 and the like).
                Ok(v) => {
                    self.inner.observe(name, v);
                    Ok(())
                }
                Err(_) => Err(raise(
                    Exc::InputType,
                    format!(
                        "Tracker.observe('{name}'): value must be a number or a one-element \
                         tensor, got {}",
                        value.get_type().name()?
                    ),
                )),
            },
        }
    }

    /// The mean of the values observed under `name` (TagError if none).
    fn mean(&self, name: &str) -> PyResult<f64> {
        self.inner.mean(name).py()
    }

    /// How many values were observed under `name` (TagError if none).
    fn count(&self, name: &str) -> PyResult<u64> {
        self.inner.count(name).py()
    }

    /// Observed names, sorted.
    fn names(&self) -> Vec<String> {
        self.inner.names()
    }

    /// {name: mean}, names sorted.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (k, v) in self.inner.means() {
            d.set_item(k, v)?;
        }
        Ok(d)
    }

    /// "name: mean" pairs, names sorted, four decimals, single spaces.
    fn summary(&self) -> String {
        self.inner.summary()
    }

    /// Forgets every observation.
    fn reset(&mut self) {
        self.inner.reset();
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.count(name).is_ok()
    }

    fn __repr__(&self) -> String {
        format!("Tracker({})", self.inner.summary())
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(top_k_accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(binary_accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(precision, m)?)?;
    m.add_function(wrap_pyfunction!(recall, m)?)?;
    m.add_function(wrap_pyfunction!(f1, m)?)?;
    m.add_function(wrap_pyfunction!(confusion_matrix, m)?)?;
    m.add_function(wrap_pyfunction!(mae, m)?)?;
    m.add_function(wrap_pyfunction!(rmse, m)?)?;
    m.add_function(wrap_pyfunction!(r2, m)?)?;
    m.add_class::<PyTracker>()?;
    Ok(())
}
