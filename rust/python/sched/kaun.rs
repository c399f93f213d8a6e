//! Kaun's schedule functions (`crate::sched::kaun`) as `Schedule`s.

use std::sync::Arc;

use pyo3::prelude::*;

use super::schedule::{schedule_arg, PySchedule};
use crate::python::errors::IntoPyResult;
use crate::sched::kaun;
use crate::sched::Schedule;

fn kaun(s: impl Schedule + 'static, desc: String) -> PySchedule {
    PySchedule {
        inner: Arc::new(s),
        desc,
    }
}

#[pyfunction]
pub(super) fn kaun_constant(value: f64) -> PySchedule {
    kaun(kaun::Constant(value), format!("constant({value})"))
}

#[pyfunction]
#[pyo3(signature = (init_value, decay_steps, alpha = 0.0))]
pub(super) fn kaun_cosine_decay(
    init_value: f64,
    decay_steps: i64,
    alpha: f64,
) -> PyResult<PySchedule> {
    let s = kaun::CosineDecay::new(init_value, decay_steps, alpha).py()?;
    Ok(kaun(
        s,
        format!("cosine_decay({init_value}, {decay_steps}, alpha={alpha})"),
    ))
}

#[pyfunction]
pub(super) fn kaun_warmup_linear(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
) -> PyResult<PySchedule> {
    let s = kaun::WarmupLinear::new(init_value, peak_value, warmup_steps).py()?;
    Ok(kaun(
        s,
        format!("warmup_linear({init_value}, {peak_value}, {warmup_steps})"),
    ))
}

#[pyfunction]
#[pyo3(signature = (init_value, peak_value, warmup_steps, decay_steps = None, end_value = 0.0))]
pub(super) fn kaun_warmup_cosine(
    init_value: f64,
    peak_value: f64,
    warmup_steps: i64,
    decay_steps: Option<i64>,
    end_value: f64,
) -> PyResult<PySchedule> {
    Ok(match decay_steps {
        None => kaun(
            kaun::WarmupCosine::new(init_value, peak_value, warmup_steps).py()?,
            format!("warmup_cosine({init_value}, {peak_value}, {warmup_steps})"),
        ),
        Some(d) => kaun(
            kaun::WarmupCosineDecay::new(init_value, peak_value, warmup_steps, d, end_value)
                .py()?,
            format!(
                "warmup_cosine({init_value}, {peak_value}, {warmup_steps}, {d}, end_value={end_value})"
            ),
        ),
    })
}

#[pyfunction]
pub(super) fn kaun_exponential_decay(
    init_value: f64,
    decay_rate: f64,
    decay_steps: i64,
) -> PyResult<PySchedule> {
    let s = kaun::ExponentialDecay::new(init_value, decay_rate, decay_steps).py()?;
    Ok(kaun(
        s,
        format!("exponential_decay({init_value}, {decay_rate}, {decay_steps})"),
    ))
}

#[pyfunction]
pub(super) fn kaun_join(
    schedules: &Bound<'_, PyAny>,
    boundaries: Vec<i64>,
) -> PyResult<PySchedule> {
    let mut parts = Vec::new();
    for (i, s) in schedules.try_iter()?.enumerate() {
        parts.push(schedule_arg(&s?, &format!("join schedules[{i}]"))?);
    }
    let s = kaun::Join::new(parts, boundaries.clone()).py()?;
    Ok(kaun(s, format!("join(boundaries={boundaries:?})")))
}
