//! Identity, and any Python callable (torch.nn.Module included) as a node.

use super::prelude::*;

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

impl PyCallable {
    /// The Python object this node calls.
    pub fn object(&self) -> &PyObject {
        &self.obj
    }
}

impl Module for PyCallable {
    fn name(&self) -> &str {
        "module"
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn describe(&self) -> String {
        format!("Python callable {}", self.label)
    }
    fn capture_blocker(&self) -> Option<String> {
        Some(format!("{} runs Python (needs the GIL)", self.describe()))
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
    // A `ferrotorch.nn` layer (a torch.nn.Module holding its core): the core
    // itself unless Python must run (an overridden forward, hooks); then a
    // Python node. `_ft_node` decides (python/ferrotorch/nn/module.py).
    if let Ok(node) = ob.getattr(pyo3::intern!(ob.py(), "_ft_node")) {
        let core = node.call0()?;
        if let Ok(m) = core.downcast::<PyModuleBase>() {
            return Ok(m.get().inner.clone());
        }
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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyIdentity>()?;
    Ok(())
}
