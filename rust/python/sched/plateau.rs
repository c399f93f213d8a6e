//! torch's ReduceLROnPlateau (`crate::sched::plateau`) bound to an
//! optimizer's groups.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::groups::PyGroups;
use super::state::{dict_to_state, state_to_py};
use super::torch::per_group;
use crate::python::errors::{raise, Exc, IntoPyResult};
use crate::sched::groups::Groups;
use crate::sched::plateau::ReduceLROnPlateau;

/// torch ReduceLROnPlateau(optimizer, mode, factor, patience, threshold,
/// threshold_mode, cooldown, min_lr, eps): `step(metrics)`.
#[pyclass(name = "ReduceLROnPlateau", module = "ferrotorch._core", frozen)]
pub(super) struct PyReduceLROnPlateau {
    core: Mutex<ReduceLROnPlateau>,
    opt: PyGroups,
}

impl PyReduceLROnPlateau {
    fn lock(&self) -> PyResult<MutexGuard<'_, ReduceLROnPlateau>> {
        self.core
            .lock()
            .map_err(|_| raise(Exc::Torch, "scheduler is poisoned".into()))
    }
}

#[pymethods]
impl PyReduceLROnPlateau {
    #[new]
    #[pyo3(signature = (optimizer, mode = "min", factor = 0.1, patience = 10, threshold = 1e-4,
                        threshold_mode = "rel", cooldown = 0, min_lr = None, eps = 1e-8))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        optimizer: &Bound<'_, PyAny>,
        mode: &str,
        factor: f64,
        patience: i64,
        threshold: f64,
        threshold_mode: &str,
        cooldown: i64,
        min_lr: Option<&Bound<'_, PyAny>>,
        eps: f64,
    ) -> PyResult<Self> {
        let who = "ReduceLROnPlateau";
        let opt = PyGroups::bind(optimizer, who)?;
        let cur = opt.lrs().py()?;
        let min_lr = min_lr.map(|m| per_group(m, who, "min_lr")).transpose()?;
        let core = ReduceLROnPlateau::new(
            mode,
            factor,
            patience,
            threshold,
            threshold_mode,
            cooldown,
            min_lr,
            eps,
            &cur,
        )
        .py()?;
        Ok(Self {
            core: Mutex::new(core),
            opt,
        })
    }

    /// Records `metrics` and reduces the lrs after `patience` bad epochs.
    #[pyo3(signature = (metrics, epoch = None))]
    fn step(&self, py: Python<'_>, metrics: &Bound<'_, PyAny>, epoch: Option<i64>) -> PyResult<()> {
        let m: f64 = py
            .import("builtins")?
            .getattr("float")?
            .call1((metrics,))?
            .extract()?;
        let cur = self.opt.lrs().py()?;
        let lrs = self.lock()?.step(m, &cur, epoch).py()?;
        // Unchanged groups keep their value; write only when one moved.
        if lrs != cur {
            self.opt.set_lrs(&lrs).py()?;
        }
        Ok(())
    }

    fn get_last_lr(&self) -> PyResult<Vec<f64>> {
        Ok(self.lock()?.last_lr.clone())
    }

    #[getter]
    fn last_epoch(&self) -> PyResult<i64> {
        Ok(self.lock()?.last_epoch)
    }

    #[getter]
    fn best(&self) -> PyResult<f64> {
        Ok(self.lock()?.best)
    }

    #[getter]
    fn num_bad_epochs(&self) -> PyResult<i64> {
        Ok(self.lock()?.num_bad_epochs)
    }

    #[getter]
    fn cooldown_counter(&self) -> PyResult<i64> {
        Ok(self.lock()?.cooldown_counter)
    }

    #[getter]
    fn in_cooldown(&self) -> PyResult<bool> {
        Ok(self.lock()?.in_cooldown())
    }

    #[getter]
    fn optimizer(&self, py: Python<'_>) -> Py<PyAny> {
        self.opt.obj.clone_ref(py)
    }

    fn state_dict(&self, py: Python<'_>) -> PyResult<Py<PyDict>> {
        state_to_py(py, &self.lock()?.state())
    }

    fn load_state_dict(&self, state_dict: &Bound<'_, PyAny>) -> PyResult<()> {
        let st = dict_to_state(state_dict)?;
        self.lock()?.load_state(&st).py()
    }
}
