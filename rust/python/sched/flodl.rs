//! floDl's schedule calculators (`crate::sched::flodl`) as `Schedule`
//! subclasses, and floDl's PlateauScheduler.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;

use super::schedule::{schedule, schedule_arg, PySchedule};
use crate::python::args::{count, float};
use crate::python::errors::{raise, Exc, IntoPyResult};
use crate::sched::flodl;

/// floDl StepDecay(base, step_size, gamma): base * gamma^(step // step_size).
#[pyclass(name = "StepDecay", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyStepDecay;

#[pymethods]
impl PyStepDecay {
    #[new]
    fn new(
        base: &Bound<'_, PyAny>,
        step_size: &Bound<'_, PyAny>,
        gamma: &Bound<'_, PyAny>,
    ) -> PyResult<PyClassInitializer<Self>> {
        const W: &str = "StepDecay()";
        let (base, gamma) = (float(base, W, "base")?, float(gamma, W, "gamma")?);
        let step_size = count(step_size, W, "step_size")? as usize;
        let s = flodl::StepDecay::new(base, step_size, gamma).py()?;
        let d = format!("StepDecay({base}, {step_size}, {gamma})");
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl CosineScheduler(base, min_lr, total).
#[pyclass(name = "CosineScheduler", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyCosineScheduler;

#[pymethods]
impl PyCosineScheduler {
    #[new]
    fn new(
        base: &Bound<'_, PyAny>,
        min_lr: &Bound<'_, PyAny>,
        total: &Bound<'_, PyAny>,
    ) -> PyResult<PyClassInitializer<Self>> {
        const W: &str = "CosineScheduler()";
        let (base, min_lr) = (float(base, W, "base")?, float(min_lr, W, "min_lr")?);
        let total = count(total, W, "total")? as usize;
        let s = flodl::CosineScheduler::new(base, min_lr, total).py()?;
        let d = format!("CosineScheduler({base}, {min_lr}, {total})");
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl WarmupScheduler(inner, target_lr, warmup_steps).
#[pyclass(name = "WarmupScheduler", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyWarmupScheduler;

#[pymethods]
impl PyWarmupScheduler {
    #[new]
    fn new(
        inner: &Bound<'_, PyAny>,
        target_lr: &Bound<'_, PyAny>,
        warmup_steps: &Bound<'_, PyAny>,
    ) -> PyResult<PyClassInitializer<Self>> {
        const W: &str = "WarmupScheduler()";
        let target_lr = float(target_lr, W, "target_lr")?;
        let warmup_steps = count(warmup_steps, W, "warmup_steps")? as usize;
        let i = schedule_arg(inner, "WarmupScheduler inner")?;
        let s = flodl::WarmupScheduler::new(i, target_lr, warmup_steps).py()?;
        let d = format!(
            "WarmupScheduler({}, {target_lr}, {warmup_steps})",
            inner.repr()?
        );
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl ExponentialLR(base, gamma): base * gamma^step.
#[pyclass(name = "ExponentialSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyExponentialSchedule;

#[pymethods]
impl PyExponentialSchedule {
    #[new]
    fn new(base: f64, gamma: f64) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::ExponentialLR::new(base, gamma).py()?;
        Ok(schedule(s, format!("ExponentialLR({base}, {gamma})")).add_subclass(Self))
    }
}

/// floDl MultiStepLR(base, milestones, gamma); milestones are sorted.
#[pyclass(name = "MultiStepSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyMultiStepSchedule {
    milestones: Vec<usize>,
}

#[pymethods]
impl PyMultiStepSchedule {
    #[new]
    fn new(base: f64, milestones: Vec<usize>, gamma: f64) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::MultiStepLR::new(base, &milestones, gamma).py()?;
        let m = s.milestones.clone();
        let d = format!("MultiStepLR({base}, {m:?}, {gamma})");
        Ok(schedule(s, d).add_subclass(Self { milestones: m }))
    }

    /// The milestones, sorted.
    #[getter]
    fn milestones(&self) -> Vec<usize> {
        self.milestones.clone()
    }
}

/// floDl OneCycleLR(max_lr, total) / with_warmup_frac(max_lr, total, frac).
#[pyclass(name = "OneCycleSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyOneCycleSchedule {
    warmup_steps: usize,
}

#[pymethods]
impl PyOneCycleSchedule {
    #[new]
    #[pyo3(signature = (max_lr, total, warmup_frac = 0.3))]
    fn new(max_lr: f64, total: usize, warmup_frac: f64) -> PyResult<PyClassInitializer<Self>> {
        let s = flodl::OneCycleLR::with_warmup_frac(max_lr, total, warmup_frac).py()?;
        let w = s.warmup_steps;
        let d = format!("OneCycleLR({max_lr}, {total}, warmup_frac={warmup_frac})");
        Ok(schedule(s, d).add_subclass(Self { warmup_steps: w }))
    }

    /// round(total * warmup_frac).
    #[getter]
    fn warmup_steps(&self) -> usize {
        self.warmup_steps
    }
}

/// floDl CyclicLR(base, max_lr, step) / asymmetric(base, max_lr, up, down).
#[pyclass(name = "CyclicSchedule", module = "ferrotorch._core", extends = PySchedule, frozen)]
struct PyCyclicSchedule;

#[pymethods]
impl PyCyclicSchedule {
    #[new]
    #[pyo3(signature = (base, max_lr, step_size_up, step_size_down = None))]
    fn new(
        base: f64,
        max_lr: f64,
        step_size_up: usize,
        step_size_down: Option<usize>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let down = step_size_down.unwrap_or(step_size_up);
        let s = flodl::CyclicLR::asymmetric(base, max_lr, step_size_up, down).py()?;
        let d = format!("CyclicLR({base}, {max_lr}, {step_size_up}, {down})");
        Ok(schedule(s, d).add_subclass(Self))
    }
}

/// floDl PlateauScheduler(base, patience, factor, min_lr=0): observe(metric) -> lr.
#[pyclass(name = "PlateauScheduler", module = "ferrotorch._core", frozen)]
struct PyPlateauScheduler(Mutex<flodl::PlateauScheduler>);

impl PyPlateauScheduler {
    fn lock(&self) -> PyResult<MutexGuard<'_, flodl::PlateauScheduler>> {
        self.0
            .lock()
            .map_err(|_| raise(Exc::Internal, "PlateauScheduler is poisoned".into()))
    }
}

#[pymethods]
impl PyPlateauScheduler {
    #[new]
    #[pyo3(signature = (base, patience, factor, min_lr = None),
           text_signature = "(base, patience, factor, min_lr=0.0)")]
    fn new(
        base: &Bound<'_, PyAny>,
        patience: &Bound<'_, PyAny>,
        factor: &Bound<'_, PyAny>,
        min_lr: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        const W: &str = "PlateauScheduler()";
        let (base, factor) = (float(base, W, "base")?, float(factor, W, "factor")?);
        let min_lr = min_lr.map_or(Ok(0.0), |m| float(m, W, "min_lr"))?;
        let patience = count(patience, W, "patience")? as usize;
        Ok(Self(Mutex::new(
            flodl::PlateauScheduler::new(base, patience, factor, min_lr).py()?,
        )))
    }

    /// Records a metric (lower is better) and returns the lr.
    fn observe(&self, metric: f64) -> PyResult<f64> {
        Ok(self.lock()?.observe(metric))
    }

    /// The current lr.
    fn lr(&self) -> PyResult<f64> {
        Ok(self.lock()?.lr())
    }

    #[getter]
    fn best(&self) -> PyResult<f64> {
        Ok(self.lock()?.best())
    }

    #[getter]
    fn wait(&self) -> PyResult<usize> {
        Ok(self.lock()?.wait())
    }
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyStepDecay>()?;
    m.add_class::<PyCosineScheduler>()?;
    m.add_class::<PyWarmupScheduler>()?;
    m.add_class::<PyExponentialSchedule>()?;
    m.add_class::<PyMultiStepSchedule>()?;
    m.add_class::<PyOneCycleSchedule>()?;
    m.add_class::<PyCyclicSchedule>()?;
    m.add_class::<PyPlateauScheduler>()?;
    Ok(())
}
