//! Linear over `crate::nn::linear`.

use super::prelude::*;

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

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLinear>()?;
    Ok(())
}
