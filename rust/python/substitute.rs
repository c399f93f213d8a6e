//! [`Substitutes`] and `crate::tensor::rebind` for Python: a call with
//! parameters read as substitutes (torch's `functional_call` on a ferrotorch
//! layer), and the permanent replacement of one tensor by another.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::substitute::Substitutes;

use super::errors::{raise, Exc, IntoPyResult};
use super::tensor::tensor_arg;

/// (original, substitute) tensor pairs from two equally long lists.
pub fn pairs_arg(
    who: &str,
    originals: &[Bound<'_, PyAny>],
    substitutes: &[Bound<'_, PyAny>],
) -> PyResult<Vec<(tch::Tensor, tch::Tensor)>> {
    if originals.len() != substitutes.len() {
        return Err(raise(
            Exc::Config,
            format!(
                "{who}: {} originals for {} substitutes",
                originals.len(),
                substitutes.len()
            ),
        ));
    }
    originals
        .iter()
        .zip(substitutes)
        .enumerate()
        .map(|(i, (o, s))| {
            Ok((
                tensor_arg(o, &format!("original {i}"))?,
                tensor_arg(s, &format!("substitute {i}"))?,
            ))
        })
        .collect()
}

/// Calls `fn_(*args, **kwargs)` with each `originals[i]` read as
/// `substitutes[i]` by every ferrotorch module, on this thread only.
#[pyfunction]
#[pyo3(signature = (originals, substitutes, fn_, *args, **kwargs))]
fn call_with_substitutes(
    py: Python<'_>,
    originals: Vec<Bound<'_, PyAny>>,
    substitutes: Vec<Bound<'_, PyAny>>,
    fn_: &Bound<'_, PyAny>,
    args: &Bound<'_, PyTuple>,
    kwargs: Option<&Bound<'_, PyDict>>,
) -> PyResult<PyObject> {
    let subs = Substitutes::new(pairs_arg(
        "call_with_substitutes",
        &originals,
        &substitutes,
    )?);
    let _ = py;
    // The scope spans a Python call (a layer's forward or one of its Rust
    // methods), so it cannot be an argument: the layer reads it from the scope.
    subs.scope(|| fn_.call(args, kwargs).map(|o| o.unbind()))
}

/// Points every ferrotorch module, graph and optimizer holding `old` at
/// `new` (same shape); returns how many handles followed.
#[pyfunction]
fn rebind(old: &Bound<'_, PyAny>, new: &Bound<'_, PyAny>) -> PyResult<usize> {
    let (o, n) = (tensor_arg(old, "old")?, tensor_arg(new, "new")?);
    crate::tensor::rebind(&o, &n).py()
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(call_with_substitutes, m)?)?;
    m.add_function(wrap_pyfunction!(rebind, m)?)?;
    Ok(())
}
