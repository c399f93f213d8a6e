//! PyO3 bindings: argument conversion and error mapping only; all behaviour
//! lives in the core modules these files are named after.

mod amp;
mod args;
mod boundary;
mod checkpoint;
mod clip;
mod data;
mod datasets;
mod errors;
mod grad_checkpoint;
mod graph;
mod loss;
mod metrics;
mod nn;
mod optim;
mod sched;
pub(crate) mod substitute;
mod tensor;
mod torch_optim;
mod train;

use pyo3::prelude::*;

#[pyfunction]
/// Seeds torch's generators (CPU and every CUDA device).
fn manual_seed(seed: u64) {
    tch::manual_seed(seed as i64);
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // libtorch_python must be initialised (by `import torch`) before any
    // tensor crosses the boundary.
    m.py().import("torch")?;
    m.add("__torch_version__", crate::TORCH_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    errors::register(m)?;
    m.add_function(wrap_pyfunction!(manual_seed, m)?)?;
    nn::register(m)?;
    graph::register(m)?;
    loss::register(m)?;
    metrics::register(m)?;
    optim::register(m)?;
    sched::register(m)?;
    clip::register(m)?;
    amp::register(m)?;
    data::register(m)?;
    datasets::register(m)?;
    train::register(m)?;
    checkpoint::register(m)?;
    grad_checkpoint::register(m)?;
    substitute::register(m)?;
    boundary::register(m)?;
    // Last: every function is registered.
    boundary::guard_functions(m)?;
    Ok(())
}
