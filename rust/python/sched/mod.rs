//! Schedules and schedulers over `crate::sched`, one file per core module:
//! argument conversion and state dicts only.

mod flodl;
mod groups;
mod kaun;
mod plateau;
mod schedule;
mod state;
mod torch;

use pyo3::prelude::*;

pub(super) use schedule::schedule_arg;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<schedule::PySchedule>()?;
    flodl::register(m)?;
    torch::register(m)?;
    m.add_class::<plateau::PyReduceLROnPlateau>()?;
    m.add_function(wrap_pyfunction!(kaun::kaun_constant, m)?)?;
    m.add_function(wrap_pyfunction!(kaun::kaun_cosine_decay, m)?)?;
    m.add_function(wrap_pyfunction!(kaun::kaun_warmup_linear, m)?)?;
    m.add_function(wrap_pyfunction!(kaun::kaun_warmup_cosine, m)?)?;
    m.add_function(wrap_pyfunction!(kaun::kaun_exponential_decay, m)?)?;
    m.add_function(wrap_pyfunction!(kaun::kaun_join, m)?)?;
    Ok(())
}
