//! Module classes: `Module` (base) and the layers of `crate::nn`, plus the
//! adapter that lets any Python callable or torch.nn.Module be a node.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyList;
use tch::{Device, Tensor};

use super::errors::{raise, stash, Exc, IntoPyResult};
use super::tensor::{tensor_arg, to_py};
use crate::nn::{self, Activation, Gelu, GeluApprox, Module, Parameter};
use crate::tensor::SharedTensor;
use crate::Result;

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
                kind = Some(t.kind());
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

    /// floDl's module name: the prefix of graph node ids.
    #[getter]
    fn name(&self) -> String {
        self.inner.name().to_string()
    }

    fn __repr__(&self) -> String {
        self.inner.describe()
    }
}

pub(super) fn device_arg(device: Option<&str>) -> PyResult<Device> {
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

pub(super) fn base(inner: Arc<dyn Module>) -> PyClassInitializer<PyModuleBase> {
    PyClassInitializer::from(PyModuleBase { inner })
}

/// Linear(in_features, out_features, bias=True): y = x Wᵀ + b.
#[pyclass(name = "Linear", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyLinear {
    inner: Arc<nn::Linear>,
}

#[pymethods]
impl PyLinear {
    #[new]
    #[pyo3(signature = (in_features, out_features, bias = true, device = None))]
    fn new(
        in_features: i64,
        out_features: i64,
        bias: bool,
        device: Option<&str>,
    ) -> PyResult<PyClassInitializer<Self>> {
        let m =
            Arc::new(nn::Linear::new(in_features, out_features, bias, device_arg(device)?).py()?);
        Ok(base(m.clone()).add_subclass(PyLinear { inner: m }))
    }
    #[getter]
    fn weight(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_py(py, &self.inner.weight())
    }
    #[getter]
    fn bias(&self, py: Python<'_>) -> PyResult<Option<PyObject>> {
        self.inner.bias().map(|b| to_py(py, &b)).transpose()
    }
    #[getter]
    fn in_features(&self) -> i64 {
        self.inner.in_features()
    }
    #[getter]
    fn out_features(&self) -> i64 {
        self.inner.out_features()
    }
}

/// LayerNorm(size, eps=1e-5): normalises the last dimension.
#[pyclass(name = "LayerNorm", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyLayerNorm {
    inner: Arc<nn::LayerNorm>,
}

#[pymethods]
impl PyLayerNorm {
    #[new]
    #[pyo3(signature = (size, eps = 1e-5, device = None))]
    fn new(size: i64, eps: f64, device: Option<&str>) -> PyResult<PyClassInitializer<Self>> {
        let m = Arc::new(nn::LayerNorm::new(size, eps, device_arg(device)?).py()?);
        Ok(base(m.clone()).add_subclass(PyLayerNorm { inner: m }))
    }
    #[getter]
    fn weight(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_py(py, &self.inner.weight())
    }
    #[getter]
    fn bias(&self, py: Python<'_>) -> PyResult<PyObject> {
        to_py(py, &self.inner.bias())
    }
    #[getter]
    fn eps(&self) -> f64 {
        self.inner.eps()
    }
}

/// GELU(approximate="none" | "tanh").
#[pyclass(name = "GELU", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyGelu;

#[pymethods]
impl PyGelu {
    #[new]
    #[pyo3(signature = (approximate = "none"))]
    fn new(approximate: &str) -> PyResult<PyClassInitializer<Self>> {
        let approximate = match approximate {
            "none" => GeluApprox::None,
            "tanh" => GeluApprox::Tanh,
            a => {
                return Err(raise(
                    Exc::Config,
                    format!("GELU: approximate must be 'none' or 'tanh', got '{a}'"),
                ))
            }
        };
        Ok(base(Arc::new(Gelu { approximate })).add_subclass(PyGelu))
    }
}

/// ReLU: max(x, 0).
#[pyclass(name = "ReLU", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyRelu;

#[pymethods]
impl PyRelu {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        base(Arc::new(Activation::Relu)).add_subclass(PyRelu)
    }
}

/// Identity: returns its input.
#[pyclass(name = "Identity", module = "ferrotorch._core", extends = PyModuleBase, frozen)]
pub struct PyIdentity;

#[pymethods]
impl PyIdentity {
    #[new]
    fn new() -> PyClassInitializer<Self> {
        base(Arc::new(nn::Identity)).add_subclass(PyIdentity)
    }
}

/// A Python callable (function or torch.nn.Module) as a core module. Each
/// call takes the GIL; a torch.nn.Module's parameters join the graph's.
pub struct PyCallable {
    obj: PyObject,
    label: String,
    params: Vec<(String, SharedTensor)>,
}

impl PyCallable {
    fn new(ob: &Bound<'_, PyAny>) -> PyResult<Self> {
        let py = ob.py();
        let torch_module = py.import("torch.nn")?.getattr("Module")?;
        let mut params = Vec::new();
        if ob.is_instance(&torch_module)? {
            for item in ob.call_method0("named_parameters")?.try_iter()? {
                let (name, t): (String, Bound<'_, PyAny>) = item?.extract()?;
                params.push((name, SharedTensor::new(tensor_arg(&t, "parameter")?)));
            }
        }
        let label = ob.get_type().name()?.to_string();
        Ok(PyCallable {
            obj: ob.clone().unbind(),
            label,
            params,
        })
    }
}

impl Module for PyCallable {
    fn name(&self) -> &str {
        "module"
    }
    fn describe(&self) -> String {
        format!("Python callable {}", self.label)
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        // Inside a functional call on the graph, the torch module gets the
        // substitutes of its parameters through torch's own functional_call.
        let subs: Vec<(&String, Tensor)> = self
            .params
            .iter()
            .filter_map(|(n, t)| t.substitute().map(|s| (n, s)))
            .collect();
        Python::with_gil(|py| {
            let call = || -> PyResult<Tensor> {
                let x = to_py(py, x)?;
                let out = if subs.is_empty() {
                    self.obj.call1(py, (x,))?
                } else {
                    let d = pyo3::types::PyDict::new(py);
                    for (n, t) in &subs {
                        d.set_item(n.as_str(), to_py(py, t)?)?;
                    }
                    py.import("torch.func")?
                        .getattr("functional_call")?
                        .call1((self.obj.bind(py), d, (x,)))?
                        .unbind()
                };
                tensor_arg(out.bind(py), &format!("output of {}", self.label))
            };
            call().map_err(|e| stash(e, &self.describe()))
        })
    }
    fn parameters(&self) -> Vec<Parameter> {
        self.params
            .iter()
            .map(|(n, t)| Parameter {
                name: n.clone(),
                tensor: t.handle(),
            })
            .collect()
    }
    fn set_training(&self, on: bool) -> crate::Result<()> {
        Python::with_gil(|py| {
            // Plain functions have no train(); torch modules do.
            if self.obj.bind(py).hasattr("train").unwrap_or(false) {
                let what = format!("{}.train({on})", self.describe());
                self.obj
                    .call_method1(py, "train", (on,))
                    .map_err(|e| stash(e, &what))?;
            }
            Ok(())
        })
    }
}

/// The core module behind a Python argument: a ferrotorch module, or any
/// callable (torch.nn.Module included) wrapped as a node.
pub fn module_arg(ob: &Bound<'_, PyAny>, what: &str) -> PyResult<Arc<dyn Module>> {
    if let Ok(m) = ob.downcast::<PyModuleBase>() {
        return Ok(m.get().inner.clone());
    }
    if ob.is_callable() {
        return Ok(Arc::new(PyCallable::new(ob)?));
    }
    Err(raise(
        Exc::InputType,
        format!(
            "{what}: expected a ferrotorch module or a callable, got {}",
            ob.get_type().name()?
        ),
    ))
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModuleBase>()?;
    m.add_class::<PyLinear>()?;
    m.add_class::<PyLayerNorm>()?;
    m.add_class::<PyGelu>()?;
    m.add_class::<PyRelu>()?;
    m.add_class::<PyIdentity>()?;
    super::nn_layers::register(m)?;
    Ok(())
}
