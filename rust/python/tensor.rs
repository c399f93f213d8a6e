//! torch.Tensor <-> tch::Tensor, zero-copy both ways (same TensorImpl, so
//! same storage and same autograd node); numpy arrays come in through
//! `torch.from_numpy`, which shares their memory too.

use pyo3::prelude::*;
use tch::Tensor;

use super::errors::{raise, Exc};

/// The tensor behind a Python argument; `what` names it in errors.
pub fn tensor_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let ptr = ob.as_ptr() as *mut tch::python::CPyObject;
    // SAFETY: `ob` is a live Python object; unpack only reads it and returns
    // None for non-tensors.
    if let Ok(Some(t)) = unsafe { Tensor::pyobject_unpack(ptr) } {
        return Ok(t);
    }
    let py = ob.py();
    let np = py.import("numpy")?;
    if ob.is_instance(&np.getattr("ndarray")?)? {
        let converted = py.import("torch")?.call_method1("from_numpy", (ob,))?;
        return tensor_arg(&converted, what);
    }
    Err(raise(
        Exc::InputType,
        format!(
            "{what}: expected a torch.Tensor or numpy.ndarray, got {}",
            ob.get_type().name()?
        ),
    ))
}

/// A list of tensors from any iterable of tensors (or a single tensor).
pub fn tensor_list(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<Tensor>> {
    if let Ok(t) = tensor_arg(ob, what) {
        return Ok(vec![t]);
    }
    let mut out = Vec::new();
    let iter = ob.try_iter().map_err(|_| {
        raise(
            Exc::InputType,
            format!(
                "{what}: expected a tensor or an iterable of tensors, got {}",
                ob.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            ),
        )
    })?;
    for (i, item) in iter.enumerate() {
        out.push(tensor_arg(&item?, &format!("{what}[{i}]"))?);
    }
    Ok(out)
}

/// Wraps a tensor as a torch.Tensor (the existing Python object if any).
pub fn to_py(py: Python<'_>, t: &Tensor) -> PyResult<PyObject> {
    let ptr = t
        .pyobject_wrap()
        .map_err(|e| raise(Exc::Torch, format!("cannot wrap tensor: {e}")))?;
    // SAFETY: pyobject_wrap returns a new reference to a live object.
    Ok(unsafe { PyObject::from_owned_ptr(py, ptr as *mut pyo3::ffi::PyObject) })
}
