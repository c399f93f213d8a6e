//! Module classes over `crate::nn`, one file per core module: the `Module`
//! base class and helpers here, each layer family in its own file, and the
//! adapter that lets any Python callable or torch.nn.Module be a node.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;
use tch::Device;

use super::errors::{raise, Exc, IntoPyResult};
use super::tensor::{tensor_arg, to_py};
use crate::nn::{self, Module, Parameter};

/// What every layer file uses.
mod prelude {
    pub use std::sync::Arc;

    pub use pyo3::prelude::*;
    pub use pyo3::types::PyTuple;
    pub use tch::Tensor;

    pub use super::PyModuleBase;
    pub(crate) use super::{base, device_arg, ints, pair};
    pub use crate::nn::{
        self, init, Activation, DropoutKind, Gelu, GeluApprox, Module, Parameter, RnnKind,
    };
    pub use crate::python::errors::{raise, stash, Exc, IntoPyResult};
    pub use crate::python::tensor::{tensor_arg, to_py};
    pub use crate::tensor::SharedTensor;
    pub use crate::Result;
}

/// An int or a sequence of `n` ints (`kernel_size=3` or `(3, 5)`).
pub(crate) fn ints(ob: &Bound<'_, PyAny>, n: usize, what: &str) -> PyResult<Vec<i64>> {
    if let Ok(v) = ob.extract::<i64>() {
        return Ok(vec![v; n]);
    }
    match ob.extract::<Vec<i64>>() {
        Ok(v) if v.len() == n => Ok(v),
        _ => Err(raise(
            Exc::InputType,
            format!("{what}: expected an int or a sequence of {n} ints, got {ob}"),
        )),
    }
}

pub(crate) fn pair(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<[i64; 2]> {
    let v = ints(ob, 2, what)?;
    Ok([v[0], v[1]])
}

/// One layer class: its Python name, its signature, and the core module its
/// constructor builds from the converted arguments (an expression that may
/// use `?`).
macro_rules! layer {
    ($(#[$doc:meta])* $py:ident, $name:literal, ($($sig:tt)*), |$($arg:ident: $ty:ty),*| $make:expr) => {
        $(#[$doc])*
        #[pyclass(name = $name, module = "ferrotorch._core", extends = PyModuleBase, frozen)]
        pub struct $py;

        #[pymethods]
        impl $py {
            #[new]
            #[pyo3(signature = ($($sig)*))]
            #[allow(clippy::too_many_arguments)]
            fn new($($arg: $ty),*) -> PyResult<PyClassInitializer<Self>> {
                Ok(base(Arc::new($make)).add_subclass($py))
            }
        }
    };
}

mod activation;
mod add_parameter;
mod attention;
mod bilinear;
mod callable;
mod conv;
mod dropout;
mod embedding;
mod init;
mod layernorm;
mod linear;
mod norm;
mod pooling;
mod rnn;
mod shape;

pub use callable::{module_arg, PyCallable};

/// Base class of every ferrotorch module; holds the core module.
#[pyclass(name = "Module", module = "ferrotorch._core", subclass, frozen)]
pub struct PyModuleBase {
    pub inner: Arc<dyn Module>,
}

/// `named_parameters` with torch's `prefix` and `remove_duplicate`.
pub fn named_to_py(
    py: Python<'_>,
    ps: Vec<Parameter>,
    prefix: &str,
    remove_duplicate: bool,
) -> PyResult<PyObject> {
    let mut kept: Vec<Parameter> = Vec::new();
    for mut p in ps {
        if remove_duplicate
            && kept
                .iter()
                .any(|k| crate::shim::is_same(&k.tensor, &p.tensor))
        {
            continue;
        }
        if !prefix.is_empty() {
            p.name = format!("{prefix}.{}", p.name);
        }
        kept.push(p);
    }
    params_to_py(py, kept, true)
}

pub fn params_to_py(py: Python<'_>, ps: Vec<Parameter>, named: bool) -> PyResult<PyObject> {
    let list = PyList::empty(py);
    for p in ps {
        let t = to_py(py, &p.tensor)?;
        if named {
            list.append((p.name, t))?;
        } else {
            list.append(t)?;
        }
    }
    Ok(list.into_any().unbind())
}

#[pymethods]
impl PyModuleBase {
    /// Runs the module; the GIL is released unless the module calls Python.
    fn __call__(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        self.forward(py, x)
    }

    fn forward(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<PyObject> {
        let x = tensor_arg(x, "input")?;
        let m = self.inner.clone();
        let out = py.allow_threads(move || m.forward(&x)).py()?;
        to_py(py, &out)
    }

    /// Trainable tensors, sharing storage and .grad with the module.
    fn parameters(&self, py: Python<'_>) -> PyResult<PyObject> {
        params_to_py(py, self.inner.parameters(), false)
    }

    /// torch's keywords: `prefix` ("p" gives "p.weight"), `recurse`
    /// (a leaf holds its own parameters either way), `remove_duplicate`.
    #[pyo3(signature = (prefix = "", recurse = true, remove_duplicate = true))]
    fn named_parameters(
        &self,
        py: Python<'_>,
        prefix: &str,
        recurse: bool,
        remove_duplicate: bool,
    ) -> PyResult<PyObject> {
        let _ = recurse;
        named_to_py(py, self.inner.parameters(), prefix, remove_duplicate)
    }

    fn buffers(&self, py: Python<'_>) -> PyResult<PyObject> {
        params_to_py(py, self.inner.buffers(), false)
    }

    /// Buffers (running statistics) with their raw names.
    fn named_buffers(&self, py: Python<'_>) -> PyResult<PyObject> {
        params_to_py(py, self.inner.buffers(), true)
    }

    /// A parameter or buffer by raw name (`weight`, `running_mean`, ...);
    /// `weight` / `bias` are None when the module has none (as torch).
    fn __getattr__(&self, py: Python<'_>, name: &str) -> PyResult<PyObject> {
        let all = self
            .inner
            .parameters()
            .into_iter()
            .chain(self.inner.buffers());
        for p in all {
            if p.name == name {
                return to_py(py, &p.tensor);
            }
        }
        if name == "weight" || name == "bias" {
            return Ok(py.None());
        }
        Err(pyo3::exceptions::PyAttributeError::new_err(format!(
            "'{}' has no attribute '{name}'",
            self.inner.describe()
        )))
    }

    /// Converts parameters and buffers to float64 in place; returns the module.
    fn double(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        nn::cast(&*slf.inner, tch::Kind::Double).py()?;
        Ok(slf)
    }

    /// torch's `Module.to`: `to(device)`, `to(dtype)`, `to(device, dtype)`,
    /// `to(tensor)` or keywords `device=`, `dtype=` (`non_blocking` is
    /// accepted and ignored). Moves, then casts floating parameters and
    /// buffers in place (same handles); returns the module.
    #[pyo3(signature = (*args, device = None, dtype = None, non_blocking = false))]
    fn to<'py>(
        slf: PyRef<'py, Self>,
        args: &Bound<'py, pyo3::types::PyTuple>,
        device: Option<&Bound<'py, PyAny>>,
        dtype: Option<&Bound<'py, PyAny>>,
        non_blocking: bool,
    ) -> PyResult<PyRef<'py, Self>> {
        let _ = non_blocking;
        let (mut dev, mut kind) = (None, None);
        for a in args.iter().chain(device.cloned()).chain(dtype.cloned()) {
            let type_name = a.get_type().name()?.to_string();
            if type_name == "dtype" {
                kind = Some(super::amp::kind_arg(&a, "Module.to")?);
            } else if type_name != "str" && a.hasattr("dtype")? {
                let t = tensor_arg(&a, "Module.to")?;
                dev = Some(t.device());
                kind = Some(t.f_kind().map_err(crate::Error::from).py()?);
            } else {
                let name = a.str()?.to_string();
                dev = Some(device_arg(Some(name.as_str()))?);
            }
        }
        if let Some(d) = dev {
            nn::to_device(&*slf.inner, d).py()?;
        }
        if let Some(k) = kind {
            if !crate::tensor::is_float(k) {
                return Err(raise(
                    Exc::DType,
                    "Module.to: dtype must be floating point (torch's nn.Module.to casts only floats)"
                        .into(),
                ));
            }
            nn::cast(&*slf.inner, k).py()?;
        }
        Ok(slf)
    }

    /// Converts parameters and buffers to float32 in place; returns the module.
    fn float(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        nn::cast(&*slf.inner, tch::Kind::Float).py()?;
        Ok(slf)
    }

    /// Training mode (True) or evaluation mode; returns the module.
    #[pyo3(signature = (mode = true))]
    fn train(slf: PyRef<'_, Self>, mode: bool) -> PyResult<PyRef<'_, Self>> {
        slf.inner.set_training(mode).py()?;
        Ok(slf)
    }

    fn eval(slf: PyRef<'_, Self>) -> PyResult<PyRef<'_, Self>> {
        slf.inner.set_training(false).py()?;
        Ok(slf)
    }

    /// Detaches carried state and advances step counters (after optimizer.step()).
    fn end_step(&self) {
        self.inner.end_step();
    }

    /// The training mode of a module that has one (dropout, batch norm), else None.
    #[getter]
    fn training(&self) -> Option<bool> {
        self.inner.training_mode()
    }

    /// floDl's module name: the prefix of graph node ids.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    fn __repr__(&self) -> String {
        self.inner.describe()
    }
}

pub(crate) fn device_arg(device: Option<&str>) -> PyResult<Device> {
    match device {
        None | Some("cpu") => Ok(Device::Cpu),
        Some("cuda") => Ok(Device::Cuda(0)),
        Some(d) => match d
            .strip_prefix("cuda:")
            .and_then(|i| i.parse::<usize>().ok())
        {
            Some(i) => Ok(Device::Cuda(i)),
            None => Err(raise(
                Exc::Config,
                format!("unknown device '{d}'; use 'cpu', 'cuda' or 'cuda:N'"),
            )),
        },
    }
}

pub(crate) fn base(inner: Arc<dyn Module>) -> PyClassInitializer<PyModuleBase> {
    PyClassInitializer::from(PyModuleBase { inner })
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModuleBase>()?;
    linear::register(m)?;
    layernorm::register(m)?;
    activation::register(m)?;
    callable::register(m)?;
    conv::register(m)?;
    norm::register(m)?;
    dropout::register(m)?;
    embedding::register(m)?;
    rnn::register(m)?;
    attention::register(m)?;
    add_parameter::register(m)?;
    bilinear::register(m)?;
    pooling::register(m)?;
    shape::register(m)?;
    init::register(m)
}
