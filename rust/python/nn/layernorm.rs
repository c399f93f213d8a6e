//! LayerNorm over `crate::nn::layernorm`.

use super::prelude::*;

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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLayerNorm>()?;
    Ok(())
}
