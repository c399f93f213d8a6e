//! Schedules as Python objects: the base `Schedule` class over
//! `crate::sched::Schedule`, and Python callables `int -> float` as schedules.

use std::sync::Arc;

use pyo3::prelude::*;

use crate::python::errors::{raise, stash, Exc};
use crate::sched::{ArcSchedule, Schedule};

// ---------------------------------------------------------------------------
// Python callables as schedules

/// A Python callable `int -> float` used as a schedule (takes the GIL).
struct CallableSchedule(Py<PyAny>);

impl Schedule for CallableSchedule {
    fn lr(&self, step: usize) -> f64 {
        self.try_lr(step).unwrap_or(f64::NAN)
    }

    fn try_lr(&self, step: usize) -> crate::Result<f64> {
        Python::with_gil(|py| {
            let f = self.0.bind(py);
            let v = f
                .call1((step,))
                .map_err(|e| stash(e, "schedule callable"))?;
            v.extract::<f64>().map_err(|_| {
                let got = v.repr().map(|r| r.to_string()).unwrap_or_default();
                let ty = v.get_type().name().map(|n| n.to_string()).unwrap_or_default();
                let msg = format!(
                    "schedule callable {}: at step {step} it returned {got} ({ty}); a schedule must return a float",
                    f.repr().map(|r| r.to_string()).unwrap_or_default()
                );
                stash(raise(Exc::InputType, msg.clone()), &msg)
            })
        })
    }
}

/// A ferrotorch schedule, or any Python callable `int -> float`.
pub(in crate::python) fn schedule_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<ArcSchedule> {
    if let Ok(s) = ob.downcast::<PySchedule>() {
        return Ok(s.get().inner.clone());
    }
    if ob.is_callable() {
        return Ok(Arc::new(CallableSchedule(ob.clone().unbind())));
    }
    Err(raise(
        Exc::InputType,
        format!(
            "{what}: expected a schedule or a callable int -> float, got {}",
            ob.get_type().name()?
        ),
    ))
}

pub(super) fn step_arg(who: &str, step: i64) -> PyResult<usize> {
    usize::try_from(step)
        .map_err(|_| raise(Exc::Config, format!("{who}: step must be >= 0, got {step}")))
}

// ---------------------------------------------------------------------------
// Schedules: floDl calculators and Kaun functions

/// A learning rate as a function of the step: `s(step)` or `s.lr(step)`.
#[pyclass(name = "Schedule", module = "ferrotorch._core", subclass, frozen)]
pub struct PySchedule {
    pub(super) inner: ArcSchedule,
    pub(super) desc: String,
}

#[pymethods]
impl PySchedule {
    /// The value at `step` (an int >= 0).
    fn lr(&self, step: i64) -> PyResult<f64> {
        self.inner
            .try_lr(step_arg(&self.desc, step)?)
            .map_err(crate::python::errors::to_py)
    }

    fn __call__(&self, step: i64) -> PyResult<f64> {
        self.lr(step)
    }

    fn __repr__(&self) -> String {
        self.desc.clone()
    }
}

pub(super) fn schedule<S: Schedule + 'static>(
    s: S,
    desc: String,
) -> PyClassInitializer<PySchedule> {
    PyClassInitializer::from(PySchedule {
        inner: Arc::new(s),
        desc,
    })
}
