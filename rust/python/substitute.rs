//! `crate::substitute` for Python: a call with parameters read as
//! substitutes (torch's `functional_call` on a ferrotorch layer).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::errors::{raise, Exc};
use super::tensor::tensor_arg;

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
    if originals.len() != substitutes.len() {
        return Err(raise(
            Exc::Config,
            format!(
                "call_with_substitutes: {} originals for {} substitutes",
                originals.len(),
                substitutes.len()
            ),
        ));
    }
    let mut pairs = Vec::with_capacity(originals.len());
    for (i, (o, s)) in originals.iter().zip(&substitutes).enumerate() {
        pairs.push((
            tensor_arg(o, &format!("original {i}"))?,
            tensor_arg(s, &format!("substitute {i}"))?,
        ));
    }
    let _ = py;
    crate::substitute::with_substitutes(&pairs, || fn_.call(args, kwargs).map(|o| o.unbind()))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(call_with_substitutes, m)?)?;
    Ok(())
}
