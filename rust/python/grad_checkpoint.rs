//! Gradient checkpointing over `crate::grad_checkpoint`: a ferrotorch module
//! runs as a pure-Rust closure (no GIL in backward); any other callable gets
//! a closure that takes the GIL and calls it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use pyo3::prelude::*;
use tch::Tensor;

use super::errors::{raise, stash, Exc, IntoPyResult};
use super::nn::{module_arg, PyModuleBase};
use super::tensor::{tensor_arg, to_py};
use crate::grad_checkpoint::{checkpoint_module, checkpoint_sequential, grad_checkpoint};
use crate::shim::recompute::RecomputeFn;
use crate::Error;

fn tensors(obs: &[Bound<'_, PyAny>], what: &str) -> PyResult<Vec<Tensor>> {
    obs.iter()
        .enumerate()
        .map(|(i, t)| tensor_arg(t, &format!("{what}[{i}]")))
        .collect()
}

/// A Python callable as a recompute closure. Its first call is the forward,
/// made from this binding: a Python exception there is re-raised unchanged.
/// Later calls are recomputes inside torch's backward, which can only carry
/// a message out.
fn python_closure(obj: PyObject) -> Arc<RecomputeFn> {
    let forward_done = AtomicBool::new(false);
    Arc::new(move |xs: &[Tensor]| {
        let recompute = forward_done.swap(true, Ordering::SeqCst);
        Python::with_gil(|py| {
            let call = || -> PyResult<Vec<Tensor>> {
                let args = xs
                    .iter()
                    .map(|t| to_py(py, t))
                    .collect::<PyResult<Vec<_>>>()?;
                let out = obj.call1(py, pyo3::types::PyTuple::new(py, args)?)?;
                let items: Vec<Bound<'_, PyAny>> = out.bind(py).extract()?;
                tensors(&items, "output of grad_checkpoint's fn")
            };
            call().map_err(|e| {
                if recompute {
                    Error::Torch(format!(
                        "grad_checkpoint: fn raised while being recomputed in backward: {e}"
                    ))
                } else {
                    stash(e, "grad_checkpoint: fn")
                }
            })
        })
    })
}

#[pyfunction]
#[pyo3(signature = (fn_, inputs, params, preserve_rng_state))]
/// Internal: `ferrotorch.grad_checkpoint` after argument handling. Returns
/// the outputs as a list.
fn _grad_checkpoint(
    py: Python<'_>,
    fn_: &Bound<'_, PyAny>,
    inputs: Vec<Bound<'_, PyAny>>,
    params: Vec<Bound<'_, PyAny>>,
    preserve_rng_state: bool,
) -> PyResult<Vec<PyObject>> {
    let xs = tensors(&inputs, "grad_checkpoint: inputs")?;
    let outs = if let Ok(m) = fn_.downcast::<PyModuleBase>() {
        let m = m.get().inner.clone();
        vec![py
            .allow_threads(move || checkpoint_module(m, &xs, preserve_rng_state))
            .py()?]
    } else if fn_.is_callable() {
        let ps = tensors(&params, "grad_checkpoint: params")?;
        let f = python_closure(fn_.clone().unbind());
        grad_checkpoint(f, &xs, &ps, preserve_rng_state).py()?
    } else {
        return Err(raise(
            Exc::InputType,
            format!(
                "grad_checkpoint: fn must be callable (a module or a function), got {}",
                fn_.get_type().name()?
            ),
        ));
    };
    outs.iter().map(|t| to_py(py, t)).collect()
}

#[pyfunction]
#[pyo3(signature = (modules, segments, x, preserve_rng_state))]
/// Internal: `ferrotorch.grad_checkpoint_sequential` after argument handling.
fn _grad_checkpoint_sequential(
    py: Python<'_>,
    modules: Vec<Bound<'_, PyAny>>,
    segments: i64,
    x: &Bound<'_, PyAny>,
    preserve_rng_state: bool,
) -> PyResult<PyObject> {
    if segments < 1 {
        return Err(raise(
            Exc::Config,
            format!("grad_checkpoint_sequential: segments must be at least 1, got {segments}"),
        ));
    }
    let ms = modules
        .iter()
        .enumerate()
        .map(|(i, m)| module_arg(m, &format!("grad_checkpoint_sequential: modules[{i}]")))
        .collect::<PyResult<Vec<_>>>()?;
    let x = tensor_arg(x, "grad_checkpoint_sequential: x")?;
    let out = py
        .allow_threads(move || {
            checkpoint_sequential(&ms, segments as usize, &x, preserve_rng_state)
        })
        .py()?;
    to_py(py, &out)
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_grad_checkpoint, m)?)?;
    m.add_function(wrap_pyfunction!(_grad_checkpoint_sequential, m)?)?;
    Ok(())
}
